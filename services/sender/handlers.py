"""The consumer of the work queue: parse, process, then ack, nack or reject.

Plain aio-pika, as in the status service. FastStream's subscriber was 6-8 % of the sender's
busy samples (its own decoding, middlewares and logging context around a handler that already
parses and acks by itself), and consumes at half aio-pika's rate (BROKER-NOTES); the work
queue is the sender's hot path.
"""

import asyncio
import time
from collections.abc import Awaitable

from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError
from pydantic import ValidationError

from services.sender.worker import Sender
from shared import topology
from shared.broker import BrokerError, cancelled_by_broker
from shared.consumers import Deliveries, cancel_consumer
from shared.logs import bind_ids, clear_ids, get_logger
from shared.messages import Work

log = get_logger(__name__)

QUIET_S = 0.05
"""A stop waits this long without a handler running before it counts them all done."""


class WorkConsumer:
    """Consumes the work queue with ``sender`` on a channel of its own; every ack explicit.

    ``deliveries`` counts what arrives and what is done with, for the readiness check.
    """

    def __init__(self, sender: Sender, deliveries: Deliveries) -> None:
        self._sender = sender
        self._deliveries = deliveries
        self._handling: set[asyncio.Task[None]] = set()
        self._channel: AbstractRobustChannel | None = None
        self.queue: AbstractQueue | None = None
        self.consumer_tag: str | None = None

    async def start(self, connection: AbstractRobustConnection, prefetch: int) -> None:
        """Take up to ``prefetch`` unacked work messages at a time, from now on."""
        channel = await connection.channel()
        self._channel = channel
        await channel.set_qos(prefetch_count=prefetch)
        await topology.declare(channel)
        # The instance topology.declare registered, not a new one: a robust channel restores
        # consumers after a broker restart only on queues it declared itself.
        self.queue = await channel.declare_queue(topology.WORK_QUEUE, passive=True)
        self.consumer_tag = await self.queue.consume(self._on_delivery)

    async def stop(self, timeout_s: float) -> None:
        """No new deliveries; those in flight finish within ``timeout_s``, the rest go back
        to the queue when the channel closes."""
        deadline = time.monotonic() + timeout_s
        if self.queue is not None and self.consumer_tag is not None:
            await cancel_consumer(self.queue, self.consumer_tag)
        late = await self._finish_handling(deadline)
        if late:
            log.warning("sender.stop_timeout", cancelled=len(late), timeout_s=timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()

    async def _finish_handling(self, deadline: float) -> set[asyncio.Task[None]]:
        """Wait for the handlers until none is left, for a quiet moment; those still running
        at ``deadline``.

        A delivery read just before the cancel-ok starts its handler a few loop turns later,
        so an empty set right after the cancel is looked at again before it counts.
        """
        while (left_s := deadline - time.monotonic()) > 0:
            if not self._handling:
                await asyncio.sleep(min(QUIET_S, left_s))
                if not self._handling:
                    return set()
                continue
            await asyncio.wait(set(self._handling), timeout=left_s)
        return set(self._handling)

    async def _on_delivery(self, message: AbstractIncomingMessage) -> None:
        # Each delivery is handled in a task of its own (aio-pika's, inside aiormq's); holding
        # it lets a stop wait for it, or cancel it past the stop timeout.
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        self._deliveries.note_received()
        try:
            await handle(self._sender, message)
        finally:
            # Settled, or given up on (a stop): either way no longer held by this sender.
            self._deliveries.note_settled()
            if task is not None:
                self._handling.discard(task)


async def handle(sender: Sender, message: AbstractIncomingMessage) -> None:
    """One delivery: acked only once its results and retries are confirmed by RabbitMQ."""
    clear_ids()
    work = parse_work(message.body)
    if work is None:
        # Poison: retrying cannot help. The work queue dead-letters it to mailer.work.dead.
        log.error("work.poison", redelivered=message.redelivered)
        await _settle(message.reject(requeue=False))
        return
    bind_ids(message_id=work.message_id, mailing_id=work.mailing_id, client_id=work.client_id)
    try:
        await sender.process(work)
    except BrokerError as exc:
        log.warning("work.requeued", error=str(exc))
        await _settle(message.nack(requeue=True))
        return
    except Exception:
        # A bug or an unforeseen failure: deliver again. The quorum queue's delivery limit
        # dead-letters a message that keeps failing, so it cannot loop for ever.
        log.exception("work.crashed")
        await _settle(message.nack(requeue=True))
        return
    await _settle(message.ack())


def parse_work(body: bytes) -> Work | None:
    """The work message, or None if the body is not one (phone included: it is sent as an
    integer)."""
    try:
        work = Work.model_validate_json(body)
    except ValidationError:
        return None
    return work if work.phone.isdigit() else None


async def _settle(action: Awaitable[None]) -> None:
    # The channel may have closed meanwhile (broker restart); RabbitMQ then redelivers the
    # message on its own and the database check stops a second send of a finished one.
    try:
        await action
    except (AMQPError, RuntimeError, OSError) as exc:
        log.warning("work.settle_failed", error=type(exc).__name__)
    except asyncio.CancelledError:
        if not cancelled_by_broker():
            raise
        log.warning("work.settle_failed", error="connection closed")
