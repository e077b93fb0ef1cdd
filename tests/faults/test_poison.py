"""Poison in the work and results queues: dead-lettered once, never looped, and the mailing
next to it is delivered in full (SPEC §5 invariant 7)."""

import aio_pika

from shared import topology
from tests.e2e.stack import Shape
from tests.faults.checks import judge, report
from tests.faults.conftest import Staging
from tests.waiting import eventually

CLIENTS = 300
SETTLE_S = 60.0
UNKNOWN_MESSAGE_ID = 9_000_000_000
POISON_WORK = (b"not json at all", b'{"message_id": 1}', b"[1, 2, 3]")
POISON_RESULTS = (
    b"{oops",
    b'{"message_id": %d, "status": "sent", "attempts": 1}' % UNKNOWN_MESSAGE_ID,
)


async def publish_raw(url: str, exchange: str, routing_key: str, bodies: tuple[bytes, ...]) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        target = await channel.get_exchange(exchange)
        for body in bodies:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await target.publish(message, routing_key)


async def ready(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


async def test_poison_in_the_work_and_results_queues_ends_in_the_poison_queue(
    staged: Staging,
) -> None:
    async with staged(Shape(senders=2)) as scene:
        url = scene.stack.vhost_url
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS)
        await publish_raw(url, topology.WORK_EXCHANGE, topology.WORK_ROUTING_KEY, POISON_WORK)
        await publish_raw(
            url, topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, POISON_RESULTS
        )

        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        poison = len(POISON_WORK) + len(POISON_RESULTS)
        kept = await eventually(
            lambda: ready(url, topology.POISON_QUEUE), lambda count: count >= poison, SETTLE_S
        )
        # The broker is judged too: nothing left but the poison, in the poison queue.
        figures = await judge(scene, mailing_id, run_id, poison=poison)

    report("poison in the work and results queues", figures)
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == figures.duplicate_successes == 0
    assert kept == poison, "the poison queue holds the poison, each once"
