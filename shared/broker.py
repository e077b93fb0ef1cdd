"""Publishing to RabbitMQ with confirms, for every service that publishes.

Each publish waits for the broker's confirm, is persistent, and is ``mandatory`` on a channel
that raises on a return: a message that no queue would take is an error here, not a silent
drop. aio-pika's errors become :class:`BrokerError` at this boundary.
"""

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity, DeliveryError, PublishError
from pamqp.commands import Queue
from pydantic import BaseModel

from shared import topology
from shared.errors import SharedError

# Publishes in flight at once: confirms are awaited concurrently, and gains stop near 100.
PUBLISH_CONCURRENCY = 100
READY_TIMEOUT_S = 2.0
"""Longest :meth:`Publisher.ready_count` waits for the broker's answer."""


class BrokerError(SharedError):
    """A publish was not confirmed, was returned as unroutable, or the broker is unreachable."""


def cancelled_by_broker() -> bool:
    """Whether a ``CancelledError`` just caught is the broker's doing, not this task's.

    aiormq cancels the future of every frame in flight when the connection closes under it (a
    broker restart, a reset), so a publish or an ack then raises ``CancelledError`` although
    nobody cancelled the task. A task that is itself being cancelled (a stop) must still stop.
    """
    task = asyncio.current_task()
    return task is None or not task.cancelling()


@contextmanager
def _unavailable(doing: str) -> Iterator[None]:
    """aio-pika's failures of a connection gone bad, while ``doing``, as :class:`BrokerError`."""
    try:
        yield
    except (AMQPError, OSError, RuntimeError) as exc:
        # RuntimeError: aio-pika's "channel closed" while the robust connection recovers.
        # OSError takes in TimeoutError.
        raise BrokerError(f"broker unavailable: {type(exc).__name__}") from exc
    except asyncio.CancelledError as exc:
        if not cancelled_by_broker():
            raise
        raise BrokerError(f"broker unavailable: the connection closed mid-{doing}") from exc


async def connect(url: str) -> AbstractRobustConnection:
    """A connection that reconnects by itself after a broker restart."""
    try:
        return await aio_pika.connect_robust(url)
    except (AMQPError, OSError) as exc:
        raise BrokerError(f"cannot connect to RabbitMQ: {type(exc).__name__}") from exc


def is_connected(connection: AbstractConnection) -> bool:
    """Whether the connection is up now, not closed nor being recovered."""
    return not connection.is_closed and connection.connected.is_set()


async def declare_passively(connection: AbstractRobustConnection, queue: str) -> Queue.DeclareOk:
    """What RabbitMQ counts on ``queue`` (ready messages, consumers).

    On a channel of its own: a passive declare of a missing queue closes its channel, and no
    channel in use may go with it. aio-pika's errors pass through.
    """
    async with connection.channel(publisher_confirms=False) as channel:
        declared = await channel.declare_queue(queue, passive=True, robust=False)
    return declared.declaration_result


class Publisher:
    """Confirmed, persistent, mandatory publishes on one channel of its own."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        exchanges: dict[str, AbstractExchange],
    ):
        self._connection = connection
        self._channel = channel
        self._exchanges = exchanges

    @classmethod
    async def open(cls, connection: AbstractRobustConnection) -> "Publisher":
        """Open a channel, declare the topology on it, and publish through it."""
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(connection, channel, await topology.declare(channel))

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: BaseModel,
        headers: dict[str, Any] | None = None,
        *,
        mandatory: bool = True,
    ) -> None:
        """Publish and wait for the confirm; ``mandatory``: a message no queue takes is an
        error (pass False only where no listener is a normal state, as on the control fanout).
        """
        message = aio_pika.Message(
            body.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers or {},
        )
        with _unavailable("publish"):
            try:
                await self._exchanges[exchange].publish(message, routing_key, mandatory=mandatory)
            except (DeliveryError, PublishError) as exc:
                raise BrokerError(f"publish to {exchange} not confirmed: {exc}") from exc

    async def ready_count(self, queue: str) -> int:
        """Messages waiting in ``queue``, not counting those delivered and not yet acked.

        Fails at once while the connection is being recovered, and within
        :data:`READY_TIMEOUT_S` if the broker stops answering: aio-pika would wait for the
        connection to come back, and a caller deciding whether to publish must not.
        """
        if not is_connected(self._connection):
            raise BrokerError("broker unavailable: no connection")
        with _unavailable("declare"):
            try:
                async with asyncio.timeout(READY_TIMEOUT_S):
                    declared = await declare_passively(self._connection, queue)
            except ChannelNotFoundEntity as exc:
                raise BrokerError(f"queue {queue} does not exist: declare the topology") from exc
        return int(declared.message_count or 0)

    async def publish_many(
        self, exchange: str, routing_key: str, bodies: Iterable[BaseModel]
    ) -> None:
        """Publish all, concurrently; raise after all have settled if any failed."""
        gate = asyncio.Semaphore(PUBLISH_CONCURRENCY)

        async def one(body: BaseModel) -> None:
            async with gate:
                await self.publish(exchange, routing_key, body)

        results = await asyncio.gather(*(one(b) for b in bodies), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BrokerError(f"{len(failures)} of {len(results)} publishes failed") from failures[
                0
            ]

    async def close(self) -> None:
        await self._channel.close()
