"""The real stub, a broker connection to the test's vhost, and the results it receives."""

from collections.abc import AsyncIterator

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.broker import Publisher, connect
from tests.provider_stub.helpers import Stub, serve
from tests.sender.helpers import Pipeline, Results


@pytest.fixture(scope="session")
async def stub_url() -> AsyncIterator[str]:
    runner, url = await serve(hang_max_s=30.0)
    yield url
    await runner.cleanup()


@pytest.fixture
async def stub(stub_url: str) -> AsyncIterator[Stub]:
    """The control API of the stub, reset: empty journal, default behaviour and token."""
    async with httpx.AsyncClient(base_url=stub_url, timeout=5.0) as client:
        control = Stub(client)
        await control.reset()
        yield control


@pytest.fixture
async def connection(vhost_url: str) -> AsyncIterator[AbstractRobustConnection]:
    opened = await connect(vhost_url)
    yield opened
    await opened.close()


@pytest.fixture
async def publisher(connection: AbstractRobustConnection) -> Publisher:
    """Publishes work as the planner does (declaring the topology first)."""
    return await Publisher.open(connection)


@pytest.fixture
async def results(connection: AbstractRobustConnection, publisher: Publisher) -> Results:
    found = Results()
    await found.listen(connection)
    return found


@pytest.fixture
def pipeline(
    engine: AsyncEngine,
    database_url: str,
    vhost_url: str,
    stub_url: str,
    stub: Stub,
    connection: AbstractRobustConnection,
    publisher: Publisher,
    results: Results,
) -> Pipeline:
    """Empty tables, a fresh vhost with the topology, a reset stub, results being read."""
    return Pipeline(
        engine, stub, connection, publisher, results, (database_url, vhost_url, stub_url)
    )
