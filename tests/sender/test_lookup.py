"""Message lookups against the real PostgreSQL: one query per window, failures made ours."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.sender.errors import LookupUnavailable
from services.sender.lookup import MessageLookup
from tests.sender.helpers import in_seconds, insert_mailing, queued_messages


async def test_concurrent_lookups_share_one_query(engine: AsyncEngine) -> None:
    mailing_id = await insert_mailing(engine, end_at=in_seconds(60), status="cancelled")
    works = await queued_messages(engine, mailing_id, 20)
    async with engine.begin() as db:
        await db.execute(
            text("UPDATE messages SET status = 'sent' WHERE id = :id"), {"id": works[0].message_id}
        )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        lookup = MessageLookup(engine, window_s=0.01, timeout_s=5)
        ids = [w.message_id for w in works] + [works[-1].message_id + 1000]
        states = await asyncio.gather(*(lookup.find(i) for i in ids))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)

    assert len([s for s in statements if "FROM messages m JOIN mailings g" in s]) == 1
    assert states[-1] is None  # no such message
    assert [s.message_status for s in states[:3] if s] == ["sent", "queued", "queued"]
    assert {s.mailing_status for s in states[:-1] if s} == {"cancelled"}
    assert {s.end_at for s in states[:-1] if s} == {works[0].deadline_at}


async def test_unreachable_database_is_lookup_unavailable() -> None:
    nowhere = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        lookup = MessageLookup(nowhere, window_s=0, timeout_s=2)
        with pytest.raises(LookupUnavailable, match="database unavailable"):
            await lookup.find(1)
    finally:
        await nowhere.dispose()


async def test_close_fails_the_waiting_lookups(engine: AsyncEngine) -> None:
    lookup = MessageLookup(engine, window_s=5, timeout_s=5)
    waiting = asyncio.create_task(lookup.find(1))
    await asyncio.sleep(0.01)
    await lookup.close()
    with pytest.raises(LookupUnavailable, match="lookup stopped"):
        await waiting


async def test_an_open_message_of_a_deleted_client_reads_as_cancelled(engine: AsyncEngine) -> None:
    mailing_id = await insert_mailing(engine, end_at=in_seconds(60), status="running")
    queued, sent = await queued_messages(engine, mailing_id, 2)
    async with engine.begin() as db:
        await db.execute(
            text("UPDATE messages SET status = 'sent' WHERE id = :id"), {"id": sent.message_id}
        )
        # What deleting the client leaves behind: the records, with client_id cleared.
        await db.execute(
            text("UPDATE messages SET client_id = NULL WHERE mailing_id = :id"), {"id": mailing_id}
        )
    lookup = MessageLookup(engine, window_s=0, timeout_s=5)

    states = [await lookup.find(w.message_id) for w in (queued, sent)]

    assert [s.message_status for s in states if s] == ["cancelled", "sent"]
