"""The planner as ``mailer planner`` wires it: control wake-ups, ticking, a graceful stop."""

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest
from pydantic import SecretStr
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from structlog.testing import capture_logs

from services.planner import control
from services.planner.main import serve
from services.planner.tick import tick_safely
from shared import topology
from shared.broker import connect
from shared.messages import ControlEvent
from shared.settings import BrokerSettings, DatabaseSettings
from shared.statuses import MessageStatus
from tests.planner.helpers import (
    RecordingPublisher,
    add_clients,
    add_mailing,
    drain_work,
    planner_of,
    settings,
)
from tests.planner.helpers import statuses as statuses_of
from tests.waiting import eventually

TIMEOUT_S = 5.0


async def announce(url: str, *bodies: bytes) -> None:
    """Publish raw bodies to the control fanout, as the API does."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchanges = await topology.declare(channel)
        for body in bodies:
            await exchanges[topology.CONTROL_EXCHANGE].publish(aio_pika.Message(body), "")


def event(kind: str) -> bytes:
    return ControlEvent.model_validate({"kind": kind, "mailing_id": 1}).model_dump_json().encode()


async def test_mailing_events_wake_the_planner_and_others_do_not(vhost_url: str) -> None:
    woken: asyncio.Queue[None] = asyncio.Queue()
    connection = await connect(vhost_url)
    try:
        await control.listen(connection, lambda: woken.put_nowait(None))

        await announce(
            vhost_url,
            b"not json",
            event("mailing_cancelled"),
            event("client_deleted"),
            event("mailing_created"),
            event("mailing_changed"),
        )

        for _ in range(2):
            await asyncio.wait_for(woken.get(), TIMEOUT_S)
        await asyncio.sleep(0.1)  # room for a wrong third wake-up to arrive
        assert woken.empty()
    finally:
        await connection.close()


@pytest.fixture
async def running_planner(database_url: str, vhost_url: str) -> AsyncIterator[asyncio.Task[None]]:
    """``serve`` in this process: it ticks once at start, then only when woken (interval 1 h)."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            settings(planner_tick_interval_s=3600),
            DatabaseSettings(_env_file=None, database_url=database_url),
            BrokerSettings(_env_file=None, rabbitmq_url=SecretStr(vhost_url)),
            stop,
        )
    )
    yield task
    stop.set()
    await asyncio.wait_for(task, TIMEOUT_S)


async def test_the_planner_dispatches_at_start_and_on_a_wake_up_then_stops_cleanly(
    engine: AsyncEngine, vhost_url: str, running_planner: asyncio.Task[None]
) -> None:
    await add_clients(engine, ("900", ""), ("901", ""))
    first = await add_mailing(engine)
    queued = {MessageStatus.QUEUED}

    async def statuses(mailing_id: int) -> set[str]:
        return set((await statuses_of(engine, mailing_id)).values())

    await eventually(lambda: statuses(first), lambda found: found == queued, TIMEOUT_S)
    second = await add_mailing(engine)
    await announce(vhost_url, event("mailing_created"))
    # The interval is an hour: only the wake-up can have started the second mailing.
    await eventually(lambda: statuses(second), lambda found: found == queued, TIMEOUT_S)

    assert not running_planner.done()
    assert len(await drain_work(vhost_url)) == 4


async def test_a_database_that_cannot_be_reached_fails_the_tick_quietly() -> None:
    unreachable = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/mailer")
    try:
        with capture_logs() as logs:
            more = await tick_safely(planner_of(unreachable, RecordingPublisher()))
    finally:
        await unreachable.dispose()

    assert more is False
    assert [(e["event"], e["log_level"]) for e in logs] == [("tick.failed", "warning")]


async def test_a_database_error_that_is_a_bug_is_raised(database_url: str) -> None:
    # The server's own maintenance database: reachable, but without our tables.
    wrong = create_async_engine(database_url.rsplit("/", 1)[0] + "/postgres")
    try:
        with pytest.raises(ProgrammingError):
            await tick_safely(planner_of(wrong, RecordingPublisher()))
    finally:
        await wrong.dispose()
