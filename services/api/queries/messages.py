"""Writes to messages that more than one resource makes."""

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Message
from shared.statuses import MessageStatus
from shared.zone_wakes import wake_zones


async def cancel_pending(session: AsyncSession, which: ColumnElement[bool]) -> int:
    """Messages matching ``which`` that were never handed to a sender become ``cancelled``.

    Only ``pending`` ones: a ``queued`` message may be at the provider right now, and if the
    provider accepts it, it was sent — marking it cancelled here would make ``sent`` undercount
    the provider's successes, and a final status may not change afterwards. The senders check
    the database before every call and report the queued ones ``cancelled`` (a mailing
    cancelled, a client deleted); the planner settles any left over after a grace.

    The rows are locked in id order first. An UPDATE alone locks them in whatever order its
    plan reads them, and a status or dispatch batch locking the same rows in id order would
    then deadlock with it. Returns how many were cancelled.
    """
    locked = (
        select(Message.id)
        .where(which, Message.status == MessageStatus.PENDING)
        .order_by(Message.id)
        .with_for_update()
    )
    result = await session.execute(
        update(Message)
        .where(Message.id.in_(locked.scalar_subquery()), Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.CANCELLED)
    )
    return int(getattr(result, "rowcount", 0))


async def move_zone(session: AsyncSession, client_id: int, timezone: str) -> int:
    """The client's pending windowed messages follow it to ``timezone``; returns how many.

    The planner dispatches windowed messages zone by zone, so each moved message's new zone
    is made due at once: it may be open now, or open sooner than the old one. Queued ones are
    left alone: the sender checks the window in the client's zone as it is then, and one it
    puts back is moved by the status service.
    Rows are locked in id order first, for the reason :func:`cancel_pending` gives.
    """
    locked = (
        select(Message.id)
        .where(
            Message.client_id == client_id,
            Message.status == MessageStatus.PENDING,
            Message.timezone.is_not(None),
        )
        .order_by(Message.id)
        .with_for_update()
    )
    moved = await session.execute(
        update(Message)
        .where(Message.id.in_(locked.scalar_subquery()), Message.status == MessageStatus.PENDING)
        .values(timezone=timezone)
        .returning(Message.mailing_id)
    )
    of_mailings = list(moved.scalars())
    await wake_zones(session, ((mailing_id, timezone) for mailing_id in of_mailings))
    return len(of_mailings)
