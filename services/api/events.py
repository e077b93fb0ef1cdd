"""Control events from the API to the running planners and senders (the control fanout).

Best effort by design: an event only makes replicas react at once. The planner also ticks and
the senders check the database before every call, so a lost event delays nothing past a tick;
an API request therefore never fails because the broker is down.
"""

import asyncio
import contextlib

from aio_pika.abc import AbstractRobustConnection

from shared import topology
from shared.broker import BrokerError, Publisher, connect
from shared.logs import get_logger
from shared.messages import ControlEvent

log = get_logger(__name__)

PUBLISH_TIMEOUT_S = 1.0
RECONNECT_INTERVAL_S = 2.0


class ControlEvents:
    """Publishes :class:`ControlEvent` s; connects in the background until the broker answers."""

    def __init__(self, rabbitmq_url: str) -> None:
        self._url = rabbitmq_url
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect now if the broker answers at once, else keep trying in the background."""
        self._task = asyncio.create_task(self._connect())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), PUBLISH_TIMEOUT_S)

    async def _connect(self) -> None:
        while self._publisher is None:
            try:
                self._connection = self._connection or await connect(self._url)
                self._publisher = await Publisher.open(self._connection)
            except BrokerError as exc:
                log.warning("events.broker_unavailable", error=str(exc))
                await asyncio.sleep(RECONNECT_INTERVAL_S)

    async def publish(self, event: ControlEvent) -> None:
        if self._publisher is None:
            log.warning("events.not_published", kind=event.kind, reason="not connected")
            return
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                # Not mandatory: with no planner or sender running, nobody listens, and that
                # is fine.
                await self._publisher.publish(topology.CONTROL_EXCHANGE, "", event, mandatory=False)
        except (BrokerError, TimeoutError) as exc:
            log.warning("events.not_published", kind=event.kind, reason=type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None:
            # A connection half-way through its handshake, cancelled, leaves aiormq's reader
            # behind; let a reachable broker finish first.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), PUBLISH_TIMEOUT_S)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()
