"""Reading and writing clients."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import Conflict, NotFound
from services.api.queries import messages
from shared.models import Client, Message

_UNIQUE_VIOLATION = "23505"


def _is_duplicate_phone(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION


async def create(session: AsyncSession, fields: dict[str, Any]) -> Client:
    client = Client(**fields)
    session.add(client)
    await _flush(session, fields.get("phone"))
    await session.refresh(client)
    return client


async def get(session: AsyncSession, client_id: int, *, lock: bool = False) -> Client:
    query = select(Client).where(Client.id == client_id)
    client = await session.scalar(query.with_for_update() if lock else query)
    if client is None:
        raise NotFound("client", client_id)
    return client


async def update_fields(session: AsyncSession, client_id: int, changes: dict[str, Any]) -> Client:
    client = await get(session, client_id, lock=True)
    if changes:
        moved = "timezone" in changes and changes["timezone"] != client.timezone
        for name, value in changes.items():
            setattr(client, name, value)
        await _flush(session, changes.get("phone"))
        if moved:
            await messages.move_zone(session, client_id, client.timezone)
        await session.refresh(client)
    return client


async def delete(session: AsyncSession, client_id: int) -> int:
    """Delete the client; its pending messages become ``cancelled`` now, its queued ones when
    a sender or the planner next sees them. Returns how many were cancelled now."""
    client = await get(session, client_id, lock=True)
    # The records stay (SPEC §3) with client_id cleared by the foreign key; what was not yet
    # sent never will be.
    cancelled = await messages.cancel_pending(session, Message.client_id == client_id)
    await session.delete(client)
    await session.flush()
    return cancelled


async def page(
    session: AsyncSession,
    *,
    after_id: int,
    limit: int,
    operator_code: str | None,
    tag: str | None,
) -> list[Client]:
    query = select(Client).where(Client.id > after_id).order_by(Client.id).limit(limit)
    if operator_code is not None:
        query = query.where(Client.operator_code == operator_code)
    if tag is not None:
        query = query.where(Client.tag == tag)
    return list(await session.scalars(query))


async def _flush(session: AsyncSession, phone: str | None) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two concurrent creates of one phone both pass any check made first; the unique
        # index decides, and the loser gets a 409 rather than a 500.
        if _is_duplicate_phone(exc):
            raise Conflict(f"a client with phone {phone} already exists") from exc
        raise
