"""The raw ceiling: what plain aio-pika moves through ``mailer.work`` on this machine.

Publishing with publisher confirms, persistent and mandatory, ``concurrency`` in flight (the
planner's :data:`shared.broker.PUBLISH_CONCURRENCY`), into the work queue declared exactly as
the services declare it (quorum, at-least-once dead-lettering, delivery limit); then consuming
with manual acks at the senders' prefetch. Bodies are real work messages (a serialised
:class:`shared.messages.Work` with the demo's text), so the size matches. No parsing, no
database, no HTTP: the end-to-end figure divided by this one says how much of the broker
client's speed the service keeps, a ratio that carries over to other machines.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from bench.vhosts import vhost
from services.sender.settings import SenderSettings
from services.stack.demo import TEXT
from shared import topology
from shared.broker import PUBLISH_CONCURRENCY
from shared.messages import Work

CONSUMER_PREFETCH = SenderSettings.model_fields["sender_prefetch"].default
"""The senders' default ``MAILER_SENDER_PREFETCH``."""
TIMEOUT_S = 600.0


def work_body() -> bytes:
    """A work message as the planner publishes one: a realistic phone, the demo's text."""
    work = Work(
        message_id=1_234_567,
        mailing_id=42,
        client_id=987_654,
        phone="79161234567",
        text=TEXT,
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        dispatch_xid=123_456_789,
    )
    return work.model_dump_json().encode()


async def measure(
    amqp_url: str, messages: int, concurrency: int = PUBLISH_CONCURRENCY
) -> dict[str, Any]:
    """Publish then consume ``messages`` work messages in a vhost of their own; the rates."""
    body = work_body()
    with vhost(amqp_url, f"mailer_bench_ceiling_{uuid.uuid4().hex[:10]}") as url:
        connection = await aio_pika.connect_robust(url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchanges = await topology.declare(channel)
            exchange = exchanges[topology.WORK_EXCHANGE]
            publish_s = await _publish(exchange, body, messages, concurrency)
            consume_s = await _consume(connection, messages)
    return {
        "messages": messages,
        "body_bytes": len(body),
        "publish_concurrency": concurrency,
        "consumer_prefetch": CONSUMER_PREFETCH,
        "publish_s": round(publish_s, 2),
        "publish_per_s": round(messages / publish_s),
        "consume_s": round(consume_s, 2),
        "consume_per_s": round(messages / consume_s),
    }


async def _publish(exchange: AbstractExchange, body: bytes, messages: int, workers: int) -> float:
    # ``workers`` tasks publishing one after another keep exactly that many confirms pending.
    shares = [messages // workers + (n < messages % workers) for n in range(workers)]

    async def worker(count: int) -> None:
        for _ in range(count):
            message = aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, topology.WORK_ROUTING_KEY, mandatory=True)

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(n) for n in shares if n)), TIMEOUT_S)
    return time.perf_counter() - started


async def _consume(connection: AbstractRobustConnection, messages: int) -> float:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=CONSUMER_PREFETCH)
    spec = next(spec for spec in topology.QUEUES if spec.name == topology.WORK_QUEUE)
    queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    done = asyncio.Event()
    acked = 0

    async def on_message(message: AbstractIncomingMessage) -> None:
        nonlocal acked
        await message.ack()
        acked += 1
        if acked >= messages:
            done.set()

    started = time.perf_counter()
    tag = await queue.consume(on_message, no_ack=False)
    await asyncio.wait_for(done.wait(), TIMEOUT_S)
    elapsed = time.perf_counter() - started
    await queue.cancel(tag)
    return elapsed
