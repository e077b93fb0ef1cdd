"""Acks only after commit: a stop, an unreachable database, and the results are still written."""

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.status.service import StatusService
from shared import topology
from shared.broker import Publisher
from tests.status.conftest import StartStatus, through
from tests.status.helpers import (
    SENT_AT,
    Link,
    Row,
    insert_mailing,
    publish,
    queued_messages,
    ready_count,
    rows,
    sent,
)
from tests.waiting import eventually

SENT = Row("sent", 1, None, SENT_AT)


async def _statuses(engine: AsyncEngine, ids: list[int]) -> set[str]:
    return {row.status for row in (await rows(engine, ids)).values()}


async def _received(service: StatusService) -> int:
    return service.counters.received


async def test_a_stop_writes_and_acks_what_is_buffered(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
) -> None:
    ids = await queued_messages(engine, await insert_mailing(engine), 10)
    service = await start_status(status_flush_interval_ms=60_000)
    await publish(publisher, *(sent(message_id) for message_id in ids))
    await eventually(lambda: _received(service), lambda received: received == 10)
    assert await _statuses(engine, ids) == {"queued"}  # buffered, not written yet

    await service.stop()

    assert await _statuses(engine, ids) == {"sent"}
    assert await ready_count(amqp, topology.RESULTS_QUEUE) == 0


async def test_results_wait_unacked_while_the_database_is_unreachable(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
    link: Link,
    database_url: str,
) -> None:
    before, during = await queued_messages(engine, await insert_mailing(engine), 2)
    ids = await queued_messages(engine, await insert_mailing(engine), 100)
    service = await start_status(database_url=through(database_url, link))
    await publish(publisher, sent(before))
    await eventually(lambda: _statuses(engine, [before]), lambda found: found == {"sent"})

    await link.cut()
    await publish(publisher, sent(during), *(sent(message_id) for message_id in ids))
    await eventually(lambda: _received(service), lambda received: received == 102)
    # Delivered to the service, not acked, not written: nothing to lose if it died now.
    assert await ready_count(amqp, topology.RESULTS_QUEUE) == 0
    assert service.counters.acked == 1
    assert await _statuses(engine, [during, *ids]) == {"queued"}

    await link.open()

    await eventually(lambda: _statuses(engine, [during, *ids]), lambda found: found == {"sent"})
    await service.stop()
    assert service.counters.acked == 102
    assert service.counters.requeued == 0
    assert await ready_count(amqp, topology.RESULTS_QUEUE) == 0


async def test_results_given_back_on_a_stop_during_an_outage_are_written_by_the_next_run(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
    link: Link,
    database_url: str,
) -> None:
    ids = await queued_messages(engine, await insert_mailing(engine), 50)
    await link.cut()
    first = await start_status(database_url=through(database_url, link))
    await publish(publisher, *(sent(message_id) for message_id in ids))
    await eventually(lambda: _received(first), lambda received: received == 50)

    await first.stop()

    assert first.counters.requeued == 50
    assert first.counters.acked == 0
    # A quorum queue counts requeued messages as ready a moment after the nack.
    await eventually(lambda: ready_count(amqp, topology.RESULTS_QUEUE), lambda ready: ready == 50)
    assert await _statuses(engine, ids) == {"queued"}

    second = await start_status()

    await eventually(lambda: rows(engine, ids), lambda found: set(found.values()) == {SENT})
    await second.stop()
    assert await ready_count(amqp, topology.RESULTS_QUEUE) == 0
