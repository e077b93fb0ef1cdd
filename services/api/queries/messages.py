"""Writes to messages that more than one resource makes."""

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Message
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
