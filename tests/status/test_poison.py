"""What cannot be written ends in the poison queue; what can is written all the same."""

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.status.merge import POISON_ERROR
from shared import topology
from shared.broker import Publisher
from shared.messages import Work
from tests.status.conftest import StartStatus
from tests.status.helpers import (
    SENT_AT,
    Row,
    insert_mailing,
    outcome,
    publish,
    publish_batch,
    publish_raw,
    queued_messages,
    ready_count,
    rows,
    sent,
    take_all,
)
from tests.waiting import eventually

NOT_JSON = b'{"message_id": 1, "status": "sent", "phone": "79161234567"'
WRONG_SCHEMA = b'{"message_id": 1, "status": "delivered", "attempts": 1}'


async def test_bad_bodies_and_unknown_ids_are_poison_and_the_rest_is_written(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
) -> None:
    first, second = await queued_messages(engine, await insert_mailing(engine), 2)
    unknown = outcome(second + 1_000, "sent", 1)
    # One batch: five deliveries fill it, the interval would hold them far longer.
    service = await start_status(status_batch_size=5, status_flush_interval_ms=10_000)

    await publish(publisher, sent(first))
    await publish_raw(amqp, topology.RESULTS_EXCHANGE, NOT_JSON)
    await publish_raw(amqp, topology.RESULTS_EXCHANGE, WRONG_SCHEMA)
    await publish(publisher, unknown, outcome(second, "failed", 2, "400"))

    poison = await eventually(lambda: _poison_count(amqp), lambda count: count == 3)
    assert poison == 3
    assert service.counters.batches == 1
    assert await rows(engine, [first, second]) == {
        first: Row("sent", 1, None, SENT_AT),
        second: Row("failed", 2, "400", None),
    }
    bodies = await take_all(amqp, topology.POISON_QUEUE)
    assert bodies[:2] == [NOT_JSON, WRONG_SCHEMA]
    assert json.loads(bodies[2])["message_id"] == unknown.message_id
    await service.stop()
    assert await ready_count(amqp, topology.RESULTS_QUEUE) == 0


async def test_a_batch_is_written_whole_and_only_an_all_unknown_one_is_poison(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
) -> None:
    first, second = await queued_messages(engine, await insert_mailing(engine), 2)
    # The mailing of these was deleted between the sender's lookup and its result.
    gone, gone_too = second + 1_000, second + 1_001
    # One batch: three deliveries fill it.
    service = await start_status(status_batch_size=3, status_flush_interval_ms=10_000)

    await publish_batch(publisher, outcome(first, "queued", 1, "503"), sent(first, 2), sent(gone))
    await publish_batch(publisher, sent(gone_too), outcome(gone, "failed", 1, "400"))
    await publish_batch(publisher, outcome(second, "failed", 1, "400"))

    await eventually(lambda: rows(engine, [second]), lambda found: found[second].status == "failed")
    assert await rows(engine, [first, second]) == {
        first: Row("sent", 2, "503", SENT_AT),
        second: Row("failed", 1, "400", None),
    }
    [poison] = await eventually(
        lambda: take_all(amqp, topology.POISON_QUEUE), lambda bodies: len(bodies) == 1
    )
    assert [r["message_id"] for r in json.loads(poison)["results"]] == [gone_too, gone]
    await service.stop()
    assert (service.counters.acked, service.counters.rejected) == (2, 1)
    assert await ready_count(amqp, topology.RESULTS_QUEUE) == 0


async def test_work_over_the_delivery_limit_fails_its_message(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
) -> None:
    crashing, done = await queued_messages(engine, await insert_mailing(engine), 2)
    service = await start_status()
    await publish(publisher, sent(done))
    await eventually(lambda: rows(engine, [done]), lambda found: found[done].status == "sent")

    for message_id in (crashing, done):
        await publisher.publish(
            topology.WORK_EXCHANGE, topology.WORK_ROUTING_KEY, _work(message_id)
        )
    # A sender that dies on a message returns it unacked, again and again: RabbitMQ counts
    # those deliveries and dead-letters it past the limit.
    await _bounce_until(amqp, topology.WORK_QUEUE, lambda: service.counters.acked == 3)

    assert await rows(engine, [crashing, done]) == {
        crashing: Row("failed", 3, POISON_ERROR, None),
        done: Row("sent", 1, None, SENT_AT),  # final already: unchanged
    }


def _work(message_id: int) -> Work:
    return Work(
        message_id=message_id,
        mailing_id=1,
        client_id=1,
        phone="79161234567",
        text="hello",
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        attempt=3,
    )


async def _poison_count(amqp: AbstractRobustConnection) -> int:
    return await ready_count(amqp, topology.POISON_QUEUE)


async def _bounce_until(
    amqp: AbstractRobustConnection, queue_name: str, done: Callable[[], bool], timeout_s: float = 10
) -> None:
    """Take each message of the queue and give it back, until ``done`` holds."""
    deadline = time.monotonic() + timeout_s
    async with amqp.channel() as channel:
        queue = await channel.get_queue(queue_name, ensure=False)
        while not done():
            assert time.monotonic() < deadline, f"not done within {timeout_s} s"
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.01)  # dead-lettered, or not ready again yet
            else:
                await message.nack(requeue=True)
