"""Writes to messages that more than one resource makes."""

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import MailingZone, Message
from shared.statuses import MessageStatus


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
    left alone; the sender reads the client's zone as it is when it checks the window.
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
    if of_mailings:
        zones = [
            {"mailing_id": m, "timezone": timezone, "wake_at": func.now()}
            for m in sorted(set(of_mailings))
        ]
        upsert = insert(MailingZone).values(zones)
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[MailingZone.mailing_id, MailingZone.timezone],
                set_={"wake_at": upsert.excluded.wake_at},
            )
        )
    return len(of_mailings)
