"""``GET /_stub/journal``: oldest first, filtered by msgId and time, bounded in size."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tests.provider_stub.helpers import Stub, instant, message, send, serve


async def test_entries_are_oldest_first(stub: Stub) -> None:
    for msg_id in (3, 1, 2, 1):
        await send(stub.client, msg_id)

    entries = await stub.journal()

    assert [entry["msg_id"] for entry in entries] == [3, 1, 2, 1]
    times = [instant(entry["received_at"]) for entry in entries]
    assert times == sorted(times)


async def test_entry_keeps_the_body_as_json(stub: Stub) -> None:
    await send(stub.client, 8, message(8, text="Привет, {name}! 🎉"))

    entry = await stub.only_entry()

    assert entry["body"] == {"id": 8, "phone": 79001234567, "text": "Привет, {name}! 🎉"}


async def test_filter_by_msg_id(stub: Stub) -> None:
    for msg_id in (1, 2, 1, 3, 1):
        await send(stub.client, msg_id)

    ones = await stub.journal(msg_id=1)
    none = await stub.journal(msg_id=4)

    assert [entry["msg_id"] for entry in ones] == [1, 1, 1]
    assert none == []


async def test_filter_by_msg_id_not_an_integer_is_400(stub: Stub) -> None:
    response = await stub.client.get("/_stub/journal", params={"msg_id": "abc"})

    assert response.status_code == 400
    assert "msg_id" in response.text


async def test_since_includes_the_entry_it_names(stub: Stub) -> None:
    # received_at is shown to the microsecond; each entry's own time must select it again.
    for msg_id in range(20):
        await send(stub.client, msg_id)
    entries = await stub.journal()

    for position, entry in enumerate(entries):
        selected = await stub.journal(since=entry["received_at"])
        assert selected[0] == entry, (position, entry["received_at"], selected[:1])
        assert len(selected) >= len(entries) - position


async def test_since_leaves_out_what_came_before(stub: Stub) -> None:
    await send(stub.client, 1)
    first = await stub.only_entry()
    # Wait until the clock has moved on past the first entry's time.
    cut = instant(first["received_at"]) + timedelta(milliseconds=5)
    while datetime.now(UTC) <= cut:
        await send(stub.client, 0)
    await send(stub.client, 2)

    later = await stub.journal(since=cut.isoformat())
    future = await stub.journal(since=(datetime.now(UTC) + timedelta(hours=1)).isoformat())

    assert later[-1]["msg_id"] == 2
    assert all(entry["msg_id"] != 1 for entry in later)
    assert future == []


async def test_since_in_another_offset(stub: Stub) -> None:
    await send(stub.client, 1)
    entry = await stub.only_entry()
    plus_one = instant(entry["received_at"]).astimezone(timezone(timedelta(hours=1)))
    minus_five = instant(entry["received_at"]).astimezone(timezone(timedelta(hours=-5)))
    assert plus_one.isoformat().endswith("+01:00")

    encoded = await stub.journal(since=plus_one.isoformat())
    negative = await stub.client.get(f"/_stub/journal?since={minus_five.isoformat()}")
    # As people type it: the "+" is not escaped, so the query string says " 01:00".
    raw = stub.client.build_request("GET", f"/_stub/journal?since={plus_one.isoformat()}")
    assert b"+01:00" in raw.url.query
    unencoded = await stub.client.send(raw)

    assert encoded == [entry]
    assert (negative.status_code, negative.json()) == (200, [entry])
    assert (unencoded.status_code, unencoded.json()) == (200, [entry])


@pytest.mark.parametrize(
    "since", ["2026-01-01T10:00:00", "yesterday", "2026-13-01T00:00:00+00:00", "1700000000"]
)
async def test_since_without_an_offset_is_400(stub: Stub, since: str) -> None:
    response = await stub.client.get("/_stub/journal", params={"since": since})

    assert response.status_code == 400
    assert "offset" in response.text


async def test_filters_combine(stub: Stub) -> None:
    await send(stub.client, 1)
    cut = (await stub.only_entry())["received_at"]
    await send(stub.client, 2)
    await send(stub.client, 1)

    entries = await stub.journal(msg_id=1, since=cut)

    assert [entry["msg_id"] for entry in entries] == [1, 1]


@pytest.fixture
async def small_stub() -> AsyncIterator[Stub]:
    """A stub of its own that keeps only the 10 newest entries."""
    runner, url = await serve(journal_size=10)
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        yield Stub(client)
    await runner.cleanup()


async def test_journal_keeps_the_newest_entries_and_counts_all(small_stub: Stub) -> None:
    for msg_id in range(1, 26):
        assert (await send(small_stub.client, msg_id)).status_code == 200

    entries = await small_stub.journal()
    summary = await small_stub.summary()

    assert [entry["msg_id"] for entry in entries] == list(range(16, 26))
    assert summary["requests"] == 25
    assert (summary["unique_msg_ids"], summary["successes"]) == (25, 25)
    assert summary["by_outcome"] == {"ok": 25}
