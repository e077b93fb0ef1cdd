"""The status service in-process against the test database and a vhost of the test's own."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.engine import make_url

from services.status.service import StatusService, start
from services.status.settings import StatusSettings
from shared.broker import Publisher, connect
from shared.settings import BrokerSettings, DatabaseSettings, HealthSettings
from tests.status.helpers import Link

StartStatus = Callable[..., Awaitable[StatusService]]


@pytest.fixture
async def amqp(vhost_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A connection of the test's own to its vhost, for publishing and looking at queues."""
    connection = await connect(vhost_url)
    yield connection
    await connection.close()


@pytest.fixture
async def publisher(amqp: AbstractRobustConnection) -> Publisher:
    """Confirmed publishes as the senders make them (declares the topology too)."""
    return await Publisher.open(amqp)


@pytest.fixture
async def start_status(database_url: str, vhost_url: str) -> AsyncIterator[StartStatus]:
    """Starts a status service (``database_url=``, ``health=`` and settings may be given);
    stops it after."""
    started: list[StatusService] = []

    async def starting(
        database_url: str = database_url, health: HealthSettings | None = None, **settings: object
    ) -> StatusService:
        options = {"status_flush_interval_ms": 20, "status_db_retry_max_s": 0.2, **settings}
        service = await start(
            StatusSettings(_env_file=None, **options),  # type: ignore[arg-type]
            DatabaseSettings(_env_file=None, database_url=database_url),
            BrokerSettings(_env_file=None, rabbitmq_url=vhost_url),  # type: ignore[arg-type]
            health,
        )
        started.append(service)
        return service

    yield starting
    for service in started:
        if not service.flusher.done():
            await service.stop()


@pytest.fixture
async def link(database_url: str) -> AsyncIterator[Link]:
    """A cuttable connection to the test database; ``link_url`` is the URL through it."""
    url = make_url(database_url)
    forwarder = Link(url.host or "127.0.0.1", url.port or 5432)
    await forwarder.open()
    yield forwarder
    await forwarder.cut()


def through(database_url: str, link: Link) -> str:
    """``database_url``, but through ``link``."""
    url = make_url(database_url).set(host="127.0.0.1", port=link.port)
    return url.render_as_string(hide_password=False)
