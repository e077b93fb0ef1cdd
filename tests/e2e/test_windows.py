"""Send windows on real clocks: nothing is sent outside a client's local window (SPEC §5.2).

No fake clock: each test picks, from the time it runs, a zone and a window whose edges fall
where the test needs them. Window edges are whole local minutes and every zone's offset is a
whole number of minutes, so a window opens on a whole UTC minute.
"""

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.stack.seed import demo_tags
from shared.timezones import zone
from tests.e2e.helpers import Api, Stub, instant
from tests.e2e.stack import Stack
from tests.waiting import eventually

CLIENTS = 10
SEND_WITHIN_S = 15.0
"""How soon after its window opens (or after creation, when open) a message must be sent."""
MIN_LEAD_S = 8.0
"""A window opening sooner than this after creation leaves no time to see messages wait."""
MATERIALISED_WITHIN_S = 10.0
FINISH_GRACE_S = 15.0
END_IN_S = 60.0
EXPIRED_WITHIN_S = 30.0
"""Messages whose window opens after end_at expire this long before end_at at the latest."""
# Whole-hour zones cover every local hour at any instant: UTC-12 to UTC+14 is 27 offsets.
WHOLE_HOUR_OFFSETS_H = range(-12, 15)


async def test_messages_wait_pending_until_the_window_opens_and_none_is_sent_before(
    stack: Stack, api: Api, stub: Stub, stack_engine: AsyncEngine
) -> None:
    # UTC+05:45: a window opens on a whole minute even where the offset is not whole hours.
    timezone = "Asia/Kathmandu"
    run_id = secrets.token_hex(3)
    client_ids = await clients_in(api, run_id, timezone, CLIENTS)
    opening = next_whole_minute(datetime.now(UTC) + timedelta(seconds=MIN_LEAD_S))
    window = local_window(opening, timedelta(hours=2), timezone)
    created = await api.create_mailing(run_id, send_window=window)

    waiting = await eventually(
        lambda: api.mailing(created["id"]),
        lambda found: found["status"] == "running" and found["stats"]["total"] == CLIENTS,
        MATERIALISED_WITHIN_S,
    )
    published_early = await dispatches(stack_engine, created["id"])
    requested_early = await stub.journal()
    checked_at = time.time()
    mailing = await api.settled(created["id"], opening.timestamp() - time.time() + SEND_WITHIN_S)
    messages = await api.messages(created["id"])
    requests = [instant(entry["received_at"]) for entry in await stub.journal()]

    assert checked_at < opening.timestamp(), "the waiting messages were seen before the opening"
    assert waiting["stats"]["by_status"]["pending"] == CLIENTS
    assert published_early == 0, "waiting messages stay in the database, not in RabbitMQ"
    assert requested_early == []
    assert {message["client_id"] for message in messages} == client_ids
    assert {message["status"] for message in messages} == {"sent"}
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert len(requests) == CLIENTS
    assert opening.timestamp() <= min(requests)
    assert max(requests) <= opening.timestamp() + SEND_WITHIN_S


async def test_a_window_across_midnight_is_open_after_midnight_and_closed_at_midday(
    stack: Stack, api: Api, stub: Stub
) -> None:
    now = datetime.now(UTC)
    # 00:xx local: open only because 23:00-02:00 wraps; 10:00-15:59 local: next opening 23:00,
    # hours after end_at.
    after_midnight, midday = zone_reading(range(0, 1), now), zone_reading(range(10, 16), now)
    run_id = secrets.token_hex(3)
    night_ids = await clients_in(api, run_id, after_midnight, CLIENTS)
    day_ids = await clients_in(api, run_id, midday, CLIENTS)
    created = await api.create_mailing(
        run_id, end_in_s=END_IN_S, send_window={"start": "23:00", "end": "02:00"}
    )

    mailing = await api.settled(created["id"], SEND_WITHIN_S)
    messages = await api.messages(created["id"])
    night = [message for message in messages if message["client_id"] in night_ids]
    day = [message for message in messages if message["client_id"] in day_ids]
    requested = {entry["msg_id"] for entry in await stub.journal()}

    assert len(night) == len(day) == CLIENTS, (after_midnight, midday)
    assert {message["status"] for message in night} == {"sent"}, after_midnight
    assert requested == {message["id"] for message in night}, "no request for the midday zone"
    assert_missed_window(day)
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert mailing["stats"]["by_status"]["expired"] == CLIENTS


async def test_messages_expire_at_once_when_the_window_opens_only_after_end_at(
    stack: Stack, api: Api, stub: Stub
) -> None:
    # UTC+12:45 (+13:45 in summer): whatever the date, the window opens 2 h from now.
    timezone = "Pacific/Chatham"
    run_id = secrets.token_hex(3)
    client_ids = await clients_in(api, run_id, timezone, CLIENTS)
    opening = next_whole_minute(datetime.now(UTC) + timedelta(hours=2))
    window = local_window(opening, timedelta(hours=1), timezone)
    created = await api.create_mailing(run_id, end_in_s=END_IN_S, send_window=window)
    end_at = instant(created["end_at"])

    await api.settled(created["id"], END_IN_S + FINISH_GRACE_S)
    settled_at = time.time()
    finished = await api.reaches(created["id"], "finished", end_at - time.time() + FINISH_GRACE_S)
    messages = await api.messages(created["id"])
    journal = await stub.journal()

    assert settled_at < end_at - EXPIRED_WITHIN_S, (
        "expired as soon as the planner saw the late opening"
    )
    assert {message["client_id"] for message in messages} == client_ids
    assert_missed_window(messages)
    assert journal == []
    assert finished["stats"]["by_status"]["expired"] == CLIENTS


def assert_missed_window(messages: list[dict[str, Any]]) -> None:
    """Expired for their window, without a provider call."""
    assert messages
    assert {message["status"] for message in messages} == {"expired"}
    assert all("window" in (message["last_error"] or "") for message in messages), messages
    assert {message["attempts"] for message in messages} == {0}
    assert {message["sent_at"] for message in messages} == {None}


async def clients_in(api: Api, run_id: str, timezone: str, count: int) -> set[int]:
    """``count`` new clients in ``timezone``, tagged for ``run_id``; their ids."""
    tag = demo_tags(run_id)[0]
    ids = set()
    for _ in range(count):
        phone = f"7{secrets.randbelow(10**10):010d}"
        ids.add((await api.create_client(phone, tag, timezone))["id"])
    return ids


def next_whole_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def local_window(opening: datetime, length: timedelta, timezone: str) -> dict[str, str]:
    """The window that opens at the instant ``opening`` in ``timezone``, for ``length``."""
    rules = zone(timezone)
    start, end = opening.astimezone(rules), (opening + length).astimezone(rules)
    return {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}


def zone_reading(hours: range, now: datetime) -> str:
    """A whole-hour zone whose clock reads an hour in ``hours`` at ``now``."""
    for offset_h in WHOLE_HOUR_OFFSETS_H:
        # POSIX signs: Etc/GMT-3 is UTC+3.
        name = f"Etc/GMT{-offset_h:+d}" if offset_h else "Etc/GMT"
        if now.astimezone(zone(name)).hour in hours:
            return name
    raise AssertionError(f"no whole-hour zone reads an hour in {hours} at {now}")


async def dispatches(engine: AsyncEngine, mailing_id: int) -> int:
    """How many times the planner has published the mailing's messages to RabbitMQ."""
    query = text("SELECT coalesce(sum(dispatches), 0) FROM messages WHERE mailing_id = :id")
    async with engine.connect() as connection:
        return int((await connection.scalar(query, {"id": mailing_id})) or 0)
