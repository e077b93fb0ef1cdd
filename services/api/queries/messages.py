"""Writes to messages that more than one resource makes."""

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Message
from shared.statuses import MessageStatus

UNSENT = (MessageStatus.PENDING, MessageStatus.QUEUED)


async def cancel_unsent(session: AsyncSession, which: ColumnElement[bool]) -> int:
    """Unsent messages matching ``which`` become ``cancelled``; returns how many.

    The rows are locked in id order first. An UPDATE alone locks them in whatever order its
    plan reads them (by status, here), and a status or dispatch batch locking the same rows in
    id order would then deadlock with it.
    """
    locked = (
        select(Message.id)
        .where(which, Message.status.in_(UNSENT))
        .order_by(Message.id)
        .with_for_update()
    )
    result = await session.execute(
        update(Message)
        .where(Message.id.in_(locked.scalar_subquery()), Message.status.in_(UNSENT))
        .values(status=MessageStatus.CANCELLED)
    )
    return int(getattr(result, "rowcount", 0))
