"""Send windows in the planner: dispatched zone by zone as windows open (SPEC §5 invariant 2).

The planner's clock is set by the test; the database's own clock only decides that the mailing
is running (it started in the past and ends in 2030), so every instant here lies in 2027-2029.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.planner.tick import Planner, tick
from shared.statuses import MessageStatus
from shared.windows import WINDOW_NEVER_OPENS
from shared.zone_wakes import wake_zones
from tests.planner.helpers import (
    RecordingPublisher,
    add_mailing,
    execute,
    mailings_by_tick,
    messages,
    settings,
)

END_AT = datetime(2030, 1, 1, tzinfo=UTC)
BERLIN, NEW_YORK, YEKATERINBURG = "Europe/Berlin", "America/New_York", "Asia/Yekaterinburg"


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


class Clock:
    """The planner's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def add_zoned_clients(engine: AsyncEngine, zones: Sequence[str]) -> list[int]:
    """One client per zone name, in order; their ids."""
    ids = []
    async with engine.begin() as connection:
        for zone in zones:
            found = await connection.scalar(
                text(
                    "INSERT INTO clients (phone, operator_code, timezone)"
                    " VALUES ('7900' || lpad(nextval('clients_id_seq')::text, 7, '0'), '900', :tz)"
                    " RETURNING id"
                ),
                {"tz": zone},
            )
            ids.append(int(found or 0))
    return ids


async def add_windowed_mailing(
    engine: AsyncEngine, start: str, end: str, *, end_at: datetime = END_AT
) -> int:
    """A mailing with a send window, due to start now, ending at ``end_at``."""
    async with engine.begin() as connection:
        found = await connection.scalar(
            text(
                "INSERT INTO mailings (start_at, end_at, text, window_start, window_end)"
                " VALUES (now() - interval '1 second', :end_at, 'hi', :start, :end) RETURNING id"
            ),
            {"end_at": end_at, "start": time.fromisoformat(start), "end": time.fromisoformat(end)},
        )
    return int(found or 0)


def planner_at(
    engine: AsyncEngine, publisher: RecordingPublisher, clock: Clock, **fields: Any
) -> Planner:
    return Planner(engine, publisher, settings(**fields), clock=clock)


async def zones(engine: AsyncEngine, mailing_id: int) -> dict[str, datetime | None]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT timezone, wake_at FROM mailing_zones WHERE mailing_id = :id"),
            {"id": mailing_id},
        )
        return {row.timezone: row.wake_at for row in rows}


def by_zone(rows: Sequence[Row[Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row.timezone, set()).add(row.status)
    return found


async def test_a_closed_window_keeps_messages_pending_until_its_next_opening_after_dst(
    engine: AsyncEngine,
) -> None:
    await add_zoned_clients(engine, [BERLIN, BERLIN])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    publisher = RecordingPublisher()
    # 22:30 CET, the evening before clocks go forward: the next opening is 09:00 CEST = 07:00Z.
    clock = Clock(at("2027-03-27T21:30:00+00:00"))
    planner = planner_at(engine, publisher, clock)

    await tick(planner)
    waiting = await messages(engine, mailing_id)
    sleeping = await zones(engine, mailing_id)
    clock.now = at("2027-03-28T06:59:59+00:00")
    await tick(planner)
    published_before_opening = list(publisher.ids)
    clock.now = at("2027-03-28T07:00:00+00:00")
    await tick(planner)

    assert {row.status for row in waiting} == {MessageStatus.PENDING}
    assert {row.timezone for row in waiting} == {BERLIN}
    assert sleeping == {BERLIN: at("2027-03-28T07:00:00+00:00")}
    assert published_before_opening == []
    assert sorted(publisher.ids) == [row.id for row in waiting]
    assert {row.status for row in await messages(engine, mailing_id)} == {MessageStatus.QUEUED}


async def test_only_the_zones_whose_window_is_open_are_dispatched(engine: AsyncEngine) -> None:
    await add_zoned_clients(engine, [BERLIN, YEKATERINBURG, "UTC", YEKATERINBURG, NEW_YORK])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    publisher = RecordingPublisher()
    # 06:00Z: 08:00 in Berlin, 11:00 in Yekaterinburg, 06:00 UTC, 02:00 in New York.
    planner = planner_at(engine, publisher, Clock(at("2027-07-01T06:00:00+00:00")))

    report = await tick(planner)

    stored = await messages(engine, mailing_id)
    assert by_zone(stored) == {
        BERLIN: {MessageStatus.PENDING},
        YEKATERINBURG: {MessageStatus.QUEUED},
        "UTC": {MessageStatus.PENDING},
        NEW_YORK: {MessageStatus.PENDING},
    }
    assert report.dispatched == 2
    assert sorted(publisher.ids) == [row.id for row in stored if row.timezone == YEKATERINBURG]
    assert await zones(engine, mailing_id) == {
        BERLIN: at("2027-07-01T07:00:00+00:00"),
        # Open: looked at again when it closes, 21:00 local.
        YEKATERINBURG: at("2027-07-01T16:00:00+00:00"),
        "UTC": at("2027-07-01T09:00:00+00:00"),
        NEW_YORK: at("2027-07-01T13:00:00+00:00"),
    }


async def test_a_window_across_midnight_is_open_before_and_after_it(engine: AsyncEngine) -> None:
    await add_zoned_clients(engine, [BERLIN])
    mailing_id = await add_windowed_mailing(engine, "22:00", "06:00")
    publisher = RecordingPublisher()
    # 05:30 CET on the night clocks go back: inside 22:00-06:00.
    planner = planner_at(engine, publisher, Clock(at("2027-10-31T04:30:00+00:00")))

    await tick(planner)

    assert {row.status for row in await messages(engine, mailing_id)} == {MessageStatus.QUEUED}
    assert await zones(engine, mailing_id) == {BERLIN: at("2027-10-31T05:00:00+00:00")}


async def test_a_zone_whose_window_opens_only_after_end_at_expires_without_a_dispatch(
    engine: AsyncEngine,
) -> None:
    await add_zoned_clients(engine, [NEW_YORK, NEW_YORK, BERLIN])
    end_at = at("2027-07-01T12:00:00+00:00")  # 08:00 in New York, 14:00 in Berlin
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00", end_at=end_at)
    publisher = RecordingPublisher()
    planner = planner_at(engine, publisher, Clock(at("2027-07-01T06:00:00+00:00")))

    report = await tick(planner)

    stored = await messages(engine, mailing_id)
    new_york = [row for row in stored if row.timezone == NEW_YORK]
    assert {(row.status, row.last_error) for row in new_york} == {
        (MessageStatus.EXPIRED, WINDOW_NEVER_OPENS)
    }
    assert by_zone(stored)[BERLIN] == {MessageStatus.PENDING}  # opens at 07:00Z, before end_at
    assert report.expired == 2
    assert publisher.ids == []
    assert (await zones(engine, mailing_id))[NEW_YORK] is None


async def test_a_big_zone_is_dispatched_one_batch_per_visit_and_says_more_work(
    engine: AsyncEngine,
) -> None:
    await add_zoned_clients(engine, ["UTC"] * 5)
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    publisher = RecordingPublisher()
    planner = planner_at(
        engine, publisher, Clock(at("2027-07-01T10:00:00+00:00")), planner_dispatch_batch_size=2
    )

    reports = [await tick(planner) for _ in range(4)]

    assert [(r.dispatched, r.more_work) for r in reports[1:]] == [(2, True), (1, False), (0, False)]
    assert reports[0].dispatched == 2  # the first tick also materialised the audience
    assert len(set(publisher.ids)) == 5
    assert {row.status for row in await messages(engine, mailing_id)} == {MessageStatus.QUEUED}


async def test_a_message_put_back_by_a_sender_resumes_its_attempts_at_the_next_opening(
    engine: AsyncEngine,
) -> None:
    await add_zoned_clients(engine, ["UTC"])
    mailing_id = await add_windowed_mailing(engine, "09:00", "10:00")
    publisher = RecordingPublisher()
    clock = Clock(at("2027-07-01T09:30:00+00:00"))
    planner = planner_at(engine, publisher, clock)
    await tick(planner)
    # A sender made two calls, then found the window closed and put the message back.
    await execute(
        engine,
        "UPDATE messages SET status = 'pending', attempts = 2, last_error = 'HTTP 503'"
        " WHERE mailing_id = :id",
        id=mailing_id,
    )

    clock.now = at("2027-07-01T10:00:00+00:00")
    await tick(planner)
    after_closing = len(publisher.published)
    clock.now = at("2027-07-02T09:00:00+00:00")
    await tick(planner)

    first, again = publisher.published
    assert after_closing == 1
    assert (first.attempt, first.dispatch, first.last_error) == (1, 1, None)
    assert (again.attempt, again.dispatch, again.last_error) == (3, 2, "HTTP 503")
    assert again.message_id == first.message_id


async def test_a_zone_gets_new_messages_while_asleep_and_wakes_for_them(
    engine: AsyncEngine,
) -> None:
    """Materialising in chunks: a zone put to sleep by one chunk is woken by the next."""
    await add_zoned_clients(engine, ["UTC", BERLIN, "UTC"])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    publisher = RecordingPublisher()
    clock = Clock(at("2027-07-01T08:00:00+00:00"))  # open in Berlin (10:00), closed in UTC
    planner = planner_at(
        engine, publisher, clock, planner_audience_chunk_size=1, planner_batches_per_tick=1
    )

    for _ in range(3):
        await tick(planner)
    clock.now = at("2027-07-01T09:00:00+00:00")
    await tick(planner)

    assert by_zone(await messages(engine, mailing_id)) == {
        "UTC": {MessageStatus.QUEUED},
        BERLIN: {MessageStatus.QUEUED},
    }
    assert len(publisher.ids) == 3


class PlannerDies(Exception):
    """Stands for the planner process dying in the middle of a batch."""


async def test_a_planner_dying_mid_batch_leaves_the_zone_due_and_its_messages_pending(
    engine: AsyncEngine,
) -> None:
    await add_zoned_clients(engine, ["UTC", "UTC"])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    clock = Clock(at("2027-07-01T10:00:00+00:00"))

    def die(_work: object) -> bool:
        raise PlannerDies

    await tick(planner_at(engine, RecordingPublisher(), Clock(at("2027-07-01T08:00:00+00:00"))))
    with pytest.raises(PlannerDies):
        await tick(planner_at(engine, RecordingPublisher(refuse=die), clock))
    after_death = await zones(engine, mailing_id), await messages(engine, mailing_id)
    publisher = RecordingPublisher()
    await tick(planner_at(engine, publisher, clock))

    woken, left = after_death
    assert woken == {"UTC": at("2027-07-01T09:00:00+00:00")}, "not put to sleep until 21:00"
    assert {row.status for row in left} == {MessageStatus.PENDING}
    assert sorted(publisher.ids) == [row.id for row in left]
    assert await zones(engine, mailing_id) == {"UTC": at("2027-07-01T21:00:00+00:00")}


class WakingPublisher(RecordingPublisher):
    """Wakes a zone from another transaction while the planner waits for its first confirm,
    as the status service does for a message put back, or a chunk of the audience."""

    def __init__(self, engine: AsyncEngine, zone: tuple[int, str]) -> None:
        super().__init__()
        self._engine, self._zone, self.woken = engine, zone, False

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: BaseModel,
        headers: dict[str, Any] | None = None,
    ) -> None:
        if not self.woken:
            self.woken = True
            async with self._engine.begin() as connection:
                await wake_zones(connection, [self._zone])
        await super().publish(exchange, routing_key, body, headers)


async def test_a_wake_up_during_a_visit_is_not_overwritten_by_its_sleep(
    engine: AsyncEngine,
) -> None:
    await add_zoned_clients(engine, ["UTC"])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    clock = Clock(at("2027-07-01T10:00:00+00:00"))
    publisher = WakingPublisher(engine, (mailing_id, "UTC"))

    await tick(planner_at(engine, publisher, clock))

    assert publisher.woken
    assert len(publisher.ids) == 1
    woken_at = (await zones(engine, mailing_id))["UTC"]
    assert woken_at is not None
    assert woken_at < clock.now, "put to sleep until 21:00 all the same"


async def test_zones_of_a_cancelled_mailing_are_retired_and_its_put_back_messages_cancelled(
    engine: AsyncEngine,
) -> None:
    """A sender put a message back just as the API cancelled its mailing."""
    await add_zoned_clients(engine, ["UTC", "UTC"])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    clock = Clock(at("2027-07-01T08:00:00+00:00"))
    planner = planner_at(engine, RecordingPublisher(), clock)
    await tick(planner)
    await execute(engine, "UPDATE mailings SET status = 'cancelled' WHERE id = :id", id=mailing_id)
    async with engine.begin() as connection:
        await wake_zones(connection, [(mailing_id, "UTC")])

    await tick(planner)

    assert await zones(engine, mailing_id) == {"UTC": None}
    assert {row.status for row in await messages(engine, mailing_id)} == {MessageStatus.CANCELLED}


async def test_a_zone_stays_due_while_another_planner_holds_some_of_its_messages(
    engine: AsyncEngine,
) -> None:
    """Another replica claimed a message and may yet roll back (a failed publish, a crash):
    this planner's short batch must not put the zone to sleep until the window closes."""
    await add_zoned_clients(engine, ["UTC", "UTC"])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    clock = Clock(at("2027-07-01T10:00:00+00:00"))
    await tick(planner_at(engine, RecordingPublisher(), Clock(at("2027-07-01T08:00:00+00:00"))))
    first, second = (row.id for row in await messages(engine, mailing_id))
    publisher = RecordingPublisher()
    planner = planner_at(engine, publisher, clock)

    async with engine.connect() as other_replica:
        await other_replica.execute(
            text("SELECT id FROM messages WHERE id = :id FOR UPDATE"), {"id": first}
        )
        await tick(planner)
        while_held = list(publisher.ids), await zones(engine, mailing_id)
        await other_replica.rollback()
    await tick(planner)

    assert while_held == ([second], {"UTC": at("2027-07-01T09:00:00+00:00")})
    assert sorted(publisher.ids) == [first, second]
    assert await zones(engine, mailing_id) == {"UTC": at("2027-07-01T21:00:00+00:00")}


def test_the_clock_of_these_tests_is_after_the_database_clock() -> None:
    # The zone rows are woken with the database's now(); the tests' instants must be later.
    assert at("2027-03-27T21:30:00+00:00") > datetime.now(UTC) + timedelta(days=1)


async def test_an_open_zone_waits_while_the_work_queue_is_full(engine: AsyncEngine) -> None:
    await add_zoned_clients(engine, ["UTC", "UTC"])
    mailing_id = await add_windowed_mailing(engine, "09:00", "21:00")
    publisher = RecordingPublisher()
    publisher.waiting = 100  # the senders are behind
    clock = Clock(at("2027-07-01T10:00:00+00:00"))
    planner = planner_at(engine, publisher, clock, planner_work_queue_max=100)

    held = await tick(planner)
    publisher.waiting = 0
    after = await tick(planner)

    assert (held.dispatched, after.dispatched) == (0, 2)
    assert {row.status for row in await messages(engine, mailing_id)} == {MessageStatus.QUEUED}


async def test_zones_and_other_mailings_take_turns_at_a_full_work_queue(
    engine: AsyncEngine,
) -> None:
    await add_zoned_clients(engine, ["UTC"] * 4)
    windowed = await add_windowed_mailing(engine, "09:00", "21:00")
    plain = await add_mailing(engine)
    publisher = RecordingPublisher()
    clock = Clock(at("2027-07-01T10:00:00+00:00"))
    # Room for one batch a tick: the bound, as when the senders are behind.
    fields = {"planner_dispatch_batch_size": 2, "planner_work_queue_max": 1}
    planner = planner_at(engine, publisher, clock, **fields)

    by_tick = await mailings_by_tick(planner, publisher, 2)

    assert by_tick == [{plain}, {windowed}]
