"""Whether a consumer still consumes, judged from its deliveries and its queue, not its library.

After a broker restart a process may keep (or regain) its connection and still have lost a
consumer: the status service once consumed nothing for that reason while every connection
looked fine. So the rule asks what the consumer does: messages wait in its queue, it has room
for more (fewer in flight than its prefetch), and yet nothing was delivered for a while. It
needs only what the process counts itself and what a passive declare of the queue reports.

An empty queue with nothing delivered is an idle consumer, not a lost one (a mailing waiting
for its send window, a quiet night). With several consumers on one queue, a lost one is seen
once the others cannot keep the queue empty; until then it costs nothing but capacity.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import AMQPError

from shared.broker import declare_passively, is_connected
from shared.health import Check
from shared.logs import get_logger

log = get_logger(__name__)

CANCEL_TIMEOUT_S = 5.0
"""How long a stopping service waits for the broker to confirm a consumer's cancel."""


class Consumption(Protocol):
    """What a process knows about its own consumer on one queue."""

    @property
    def in_flight(self) -> int:
        """Deliveries received and not yet settled (acked, nacked or rejected)."""
        ...

    @property
    def last_delivery_at(self) -> float:
        """Monotonic time of the latest delivery, or of the start before the first one."""
        ...


@dataclass
class Deliveries:
    """A consumer's own count of what it received and settled."""

    received: int = 0
    settled: int = 0
    last_delivery_at: float = field(default_factory=time.monotonic)

    def note_received(self) -> None:
        self.received += 1
        self.last_delivery_at = time.monotonic()

    def note_settled(self) -> None:
        self.settled += 1

    @property
    def in_flight(self) -> int:
        return self.received - self.settled


@dataclass(frozen=True)
class QueueState:
    """One look at a queue and at this process's consumer of it."""

    ready: int
    """Messages waiting in the queue (not those delivered and unacked)."""
    consumers: int
    """Consumers the broker counts on the queue, of every process."""
    in_flight: int
    prefetch: int
    idle_s: float
    """Seconds since this process's latest delivery from the queue."""


def consumer_lost(state: QueueState, stall_s: float) -> str | None:
    """Why this process's consumer looks lost, or ``None`` if it looks alive (or idle)."""
    if state.consumers == 0:
        return "the broker counts no consumer on the queue"
    stalled = state.ready > 0 and state.in_flight < state.prefetch and state.idle_s > stall_s
    if stalled:
        return (
            f"no delivery for {state.idle_s:.0f} s while {state.ready} messages wait"
            f" and {state.in_flight} of {state.prefetch} are in flight"
        )
    return None


def consumer_check(
    connection: AbstractRobustConnection,
    queue: str,
    consumption: Consumption,
    *,
    prefetch: int,
    stall_s: float,
) -> Check:
    """A readiness check of this process's consumer on ``queue``."""

    async def check() -> str | None:
        if not is_connected(connection):
            # The broker check says so; a channel opened meanwhile would only fail noisily.
            return "the broker cannot be asked: no connection"
        result = await declare_passively(connection, queue)
        state = QueueState(
            ready=int(result.message_count or 0),
            consumers=int(result.consumer_count or 0),
            in_flight=consumption.in_flight,
            prefetch=prefetch,
            idle_s=time.monotonic() - consumption.last_delivery_at,
        )
        return consumer_lost(state, stall_s)

    return check


async def cancel_consumer(queue: AbstractQueue, consumer_tag: str) -> None:
    """Stop a consumer for a graceful stop, within :data:`CANCEL_TIMEOUT_S` in all.

    The bound covers the wait for a connection being recovered too: aio-pika's own timeout
    starts only once the connection is back, so a stop during a broker outage would hang until
    the broker returned. A cancel that fails or times out is no loss: without the broker,
    every unacked delivery goes back to the queue anyway.
    """
    try:
        async with asyncio.timeout(CANCEL_TIMEOUT_S):
            await queue.cancel(consumer_tag)
    except (AMQPError, RuntimeError, OSError, TimeoutError) as exc:
        log.warning("consumer.cancel_failed", queue=queue.name, error=type(exc).__name__)
