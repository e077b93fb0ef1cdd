"""The real stub on a free port for the whole run, reset before each test that uses it."""

from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from tests.provider_stub.helpers import Stub, serve


@pytest.fixture(scope="session")
async def stub_url() -> AsyncIterator[str]:
    runner, url = await serve()
    yield url
    await runner.cleanup()


@pytest.fixture
async def stub(stub_url: str) -> AsyncIterator[Stub]:
    """The control API of the shared stub, reset: empty journal, default behaviour and token."""
    async with httpx.AsyncClient(base_url=stub_url, timeout=5.0) as client:
        control = Stub(client)
        await control.reset()
        yield control


@pytest.fixture(params=["httpx", "httpx-aiohttp"])
async def sender(request: pytest.FixtureRequest, stub: Stub) -> AsyncIterator[httpx.AsyncClient]:
    """A client as the senders build it: httpx, over its own pool or over aiohttp."""
    transport = AiohttpTransport() if request.param == "httpx-aiohttp" else None
    async with httpx.AsyncClient(base_url=str(stub.client.base_url), transport=transport) as c:
        yield c
