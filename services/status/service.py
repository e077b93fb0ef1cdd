"""The running status service: a consumer channel, a batcher and a writer, started and stopped.

Tests run it in-process with :func:`start` and :meth:`StatusService.stop`; ``mailer status``
does the same between two signals.
"""

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.status import health
from services.status.batcher import Batcher, Counters
from services.status.health import QueueConsumption
from services.status.settings import StatusSettings
from services.status.writer import Writer
from shared import topology
from shared.broker import connect
from shared.consumers import cancel_consumer
from shared.db import create_engine
from shared.health import serving
from shared.logs import get_logger
from shared.settings import BrokerSettings, DatabaseSettings, HealthSettings

log = get_logger(__name__)

CONSUMED = (topology.RESULTS_QUEUE, topology.WORK_DEAD_QUEUE)


@dataclass
class StatusService:
    """A started service; :meth:`stop` ends it gracefully."""

    connection: AbstractRobustConnection
    engine: AsyncEngine
    batcher: Batcher
    consumers: list[tuple[AbstractQueue, str]]
    flusher: asyncio.Task[None]
    health: AsyncExitStack
    """Closes the health server, first on a stop: a stopping service is not ready."""

    @property
    def counters(self) -> Counters:
        return self.batcher.counters

    async def stop(self) -> None:
        """Stop consuming, write and ack what is buffered, then close everything."""
        await self.health.aclose()
        # Side by side: during a broker outage each cancel waits out its timeout.
        await asyncio.gather(*(cancel_consumer(queue, tag) for queue, tag in self.consumers))
        # Deliveries read before the cancel-ok reach the buffer a loop turn later; any later
        # still go back to their queue when the channel closes.
        await asyncio.sleep(0)
        self.batcher.stop()
        try:
            await self.flusher
        finally:
            # Anything not acked by now goes back to its queue when the channel closes.
            await self.connection.close()
            await self.engine.dispose()
        log.info("status.stopped", **vars(self.counters))


async def start(
    status: StatusSettings,
    database: DatabaseSettings,
    broker: BrokerSettings,
    health_settings: HealthSettings | None = None,
) -> StatusService:
    """Connect, declare the topology, and consume results and dead work into batches; serve
    ``/healthz`` and ``/readyz`` too if ``health_settings`` has a port."""
    connection = await connect(broker.rabbitmq_url.get_secret_value())
    engine = create_engine(database)
    batcher = Batcher(
        Writer(engine),
        batch_size=status.status_batch_size,
        flush_interval_s=status.status_flush_interval_ms / 1000,
        retry_max_s=status.status_db_retry_max_s,
    )
    flusher = asyncio.create_task(batcher.run(), name="status-flusher")
    consumptions = [QueueConsumption(name, batcher) for name in CONSUMED]
    health_server = AsyncExitStack()
    try:
        consumers = await _consume(connection, batcher, consumptions, status.status_prefetch)
        checks = partial(
            health.checks,
            connection=connection,
            engine=engine,
            consumptions=consumptions,
            prefetch=status.status_prefetch,
        )
        await health_server.enter_async_context(serving(health_settings, checks))
    except BaseException:
        await health_server.aclose()
        batcher.stop()
        await flusher
        await connection.close()
        await engine.dispose()
        raise
    log.info("status.started", prefetch=status.status_prefetch, batch=status.status_batch_size)
    return StatusService(connection, engine, batcher, consumers, flusher, health_server)


async def _consume(
    connection: AbstractRobustConnection,
    batcher: Batcher,
    consumptions: list[QueueConsumption],
    prefetch: int,
) -> list[tuple[AbstractQueue, str]]:
    # One channel for both queues: the prefetch applies per consumer, and a batch's deliveries
    # then share one tag sequence, so one multiple-ack settles them.
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    await topology.declare(channel)
    consumers: list[tuple[AbstractQueue, str]] = []
    for consumption in consumptions:
        # The instance topology.declare registered, not a new one from get_queue: a robust
        # channel restores consumers after a broker restart only on queues it declared itself,
        # and a consumer on another instance is silently gone (seen in tests/faults).
        queue = await channel.declare_queue(consumption.queue, passive=True)

        async def on_delivery(
            delivery: AbstractIncomingMessage, consumption: QueueConsumption = consumption
        ) -> None:
            consumption.note_delivery()
            batcher.add(consumption.queue, delivery)

        consumers.append((queue, await queue.consume(on_delivery)))
    return consumers
