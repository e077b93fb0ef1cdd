"""Wiring: the sender's parts built from its settings, started and stopped in order."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.sender import health
from services.sender.auth import AuthGate
from services.sender.control import ControlListener
from services.sender.handlers import WorkConsumer
from services.sender.logic import RetryPolicy
from services.sender.lookup import MessageLookup
from services.sender.provider import Provider, provider_client
from services.sender.settings import SenderSettings
from services.sender.worker import Limits, Sender, utc_now
from shared.broker import Publisher, connect
from shared.consumers import Deliveries
from shared.db import create_engine
from shared.health import serving
from shared.settings import BrokerSettings, DatabaseSettings, HealthSettings, ProviderSettings

REPORTS_CLOSE_TIMEOUT_S = 2.0
"""After the stop timeout, how long the last results may take to be confirmed."""


@dataclass(frozen=True)
class SenderConfig:
    """Every settings group the sender reads."""

    sender: SenderSettings
    provider: ProviderSettings
    database: DatabaseSettings
    broker: BrokerSettings
    health: HealthSettings | None = None
    """None, or no port in it: no health server."""


@dataclass(frozen=True)
class Running:
    """A started sender, and its consumer of the work queue."""

    sender: Sender
    consumer: WorkConsumer


@dataclass(frozen=True)
class _Parts:
    sender: Sender
    auth: AuthGate
    engine: AsyncEngine
    connection: AbstractRobustConnection


@asynccontextmanager
async def running(config: SenderConfig) -> AsyncIterator[Running]:
    """A sender consuming work until the block exits; then it stops gracefully: no new
    deliveries, in-flight ones finish (bounded by ``sender_stop_timeout_s``), all closed.

    The health server, if configured, starts once the sender consumes and stops first.
    """
    settings = config.sender
    url = config.broker.rabbitmq_url.get_secret_value()
    async with AsyncExitStack() as stack:
        parts = await _sender(config, url, stack)
        # Work comes in on a connection of its own: a publisher blocked by the broker's flow
        # control would otherwise hold up the acks of work already done.
        consuming = await connect(url)
        stack.push_async_callback(consuming.close)
        deliveries = Deliveries()
        consumer = WorkConsumer(parts.sender, deliveries)
        stack.push_async_callback(
            _stop, parts.sender, consumer, parts.auth, settings.sender_stop_timeout_s
        )
        await consumer.start(consuming, settings.sender_prefetch)
        checks = partial(
            health.checks,
            consuming=consuming,
            publishing=parts.connection,
            engine=parts.engine,
            deliveries=deliveries,
            prefetch=settings.sender_prefetch,
        )
        await stack.enter_async_context(serving(config.health, checks))
        yield Running(parts.sender, consumer)


async def _sender(config: SenderConfig, url: str, stack: AsyncExitStack) -> _Parts:
    """The sender and its parts; ``stack`` closes them, in reverse order of opening."""
    settings = config.sender
    # No pre-ping: a lookup that fails is retried through the retry queue like any other
    # database failure, and the ping would triple the round trips of every lookup.
    engine = create_engine(config.database, pre_ping=False)
    stack.push_async_callback(engine.dispose)
    # Results and retries go out on a connection of their own, with confirms and returns
    # raised; opening it declares the whole topology, before anything consumes.
    connection = await connect(url)
    stack.push_async_callback(connection.close)
    publisher = await Publisher.open(connection)
    control = ControlListener()
    await control.listen(connection)
    provider = config.provider
    client = provider_client(provider.provider_token, settings.sender_prefetch)
    stack.push_async_callback(client.close)
    lookup = MessageLookup(
        engine,
        window_s=settings.sender_lookup_window_ms / 1000,
        timeout_s=settings.sender_lookup_timeout_s,
    )
    stack.push_async_callback(lookup.close)
    auth = AuthGate(
        pause_min_s=settings.sender_auth_backoff_min_s,
        pause_max_s=settings.sender_auth_backoff_max_s,
    )
    sender = Sender(
        provider=Provider(client, provider.provider_url, utc_now),
        lookup=lookup,
        auth=auth,
        publisher=publisher,
        control=control,
        limits=_limits(settings),
    )
    return _Parts(sender, auth, engine, connection)


def _limits(settings: SenderSettings) -> Limits:
    return Limits(
        request_timeout_s=settings.sender_request_timeout_s,
        auth_hold_max_s=settings.sender_auth_hold_max_s,
        retry=RetryPolicy(
            max_attempts=settings.sender_max_attempts,
            base_s=settings.sender_retry_base_s,
            max_s=settings.sender_retry_max_s,
        ),
    )


async def _stop(sender: Sender, consumer: WorkConsumer, auth: AuthGate, timeout_s: float) -> None:
    # Messages held at a closed auth gate go back to the broker at once instead of waiting.
    auth.stop()
    try:
        # Before the publishing connection and the lookups close (the stack closes them next),
        # so that the handlers still in flight can report their results and be acked.
        await consumer.stop(timeout_s)
    finally:
        # Results of handlers given up on at the stop timeout, still on their way.
        await sender.close(REPORTS_CLOSE_TIMEOUT_S)
