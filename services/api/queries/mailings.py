"""Reading and writing mailings and their messages."""

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import NotFound
from services.api.queries import messages
from shared.models import Mailing, MailingCounts, Message

MailingRow = tuple[Mailing, MailingCounts]


async def create(session: AsyncSession, fields: dict[str, Any]) -> MailingRow:
    mailing = Mailing(**fields)
    session.add(mailing)
    await session.flush()
    return await get(session, mailing.id)


async def get(
    session: AsyncSession, mailing_id: int, *, lock: bool = False, for_delete: bool = False
) -> MailingRow:
    """The mailing and its counters; ``lock`` to change it, ``for_delete`` to remove it."""
    query = (
        select(Mailing, MailingCounts)
        .join(MailingCounts, MailingCounts.mailing_id == Mailing.id)
        .where(Mailing.id == mailing_id)
        # Triggers rewrite the counters behind the session's back (a cancel in this very
        # transaction, for one): reload them instead of reusing the objects already loaded.
        .execution_options(populate_existing=True)
    )
    if lock or for_delete:
        # Only the mailing row: its counters are written by status batches all the time. A
        # change takes FOR NO KEY UPDATE, which still lets the planner insert messages that
        # reference the mailing (their foreign-key check takes FOR KEY SHARE).
        query = query.with_for_update(of=Mailing, key_share=not for_delete)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("mailing", mailing_id)
    mailing, counts = row
    return mailing, counts


async def exists(session: AsyncSession, mailing_id: int) -> None:
    if await session.scalar(select(Mailing.id).where(Mailing.id == mailing_id)) is None:
        raise NotFound("mailing", mailing_id)


async def save(session: AsyncSession, mailing: Mailing, changes: dict[str, Any]) -> MailingRow:
    for name, value in changes.items():
        setattr(mailing, name, value)
    await session.flush()
    return await get(session, mailing.id)


async def cancel_messages(session: AsyncSession, mailing_id: int) -> int:
    """The mailing's pending messages become ``cancelled`` now (queued ones: see
    :func:`messages.cancel_pending`); returns how many."""
    return await messages.cancel_pending(session, Message.mailing_id == mailing_id)


async def delete(session: AsyncSession, mailing_id: int) -> None:
    # Messages and counters go with it (ON DELETE CASCADE).
    await session.execute(sql_delete(Mailing).where(Mailing.id == mailing_id))


async def page(
    session: AsyncSession, *, after_id: int, limit: int, status: str | None
) -> list[MailingRow]:
    query = (
        select(Mailing, MailingCounts)
        .join(MailingCounts, MailingCounts.mailing_id == Mailing.id)
        .where(Mailing.id > after_id)
        .order_by(Mailing.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(Mailing.status == status)
    return [(m, c) for m, c in await session.execute(query)]


async def messages_page(
    session: AsyncSession, mailing_id: int, *, after_id: int, limit: int, status: str | None
) -> list[Message]:
    query = (
        select(Message)
        .where(Message.mailing_id == mailing_id, Message.id > after_id)
        .order_by(Message.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(Message.status == status)
    return list(await session.scalars(query))
