"""One stack for the end-to-end scenarios that can share it, one after the other.

Each scenario seeds clients with tags of its own and mails only them, and starts from an empty
stub journal with the default behaviour, so that the stub's summary counts its requests alone.
A scenario that needs another shape of stack starts its own with :func:`running_stack`.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.e2e.helpers import Api, Stub
from tests.e2e.stack import API_TOKEN, Shape, Stack, running_stack

HTTP_TIMEOUT_S = 10.0


@pytest.fixture(scope="package")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """``mailer up``'s default shape: one planner, two senders, the status writer, the stub."""
    async with running_stack(Shape(), tmp_path_factory.mktemp("e2e-stack")) as running:
        yield running


@pytest.fixture(scope="package")
async def stack_engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers=headers, timeout=HTTP_TIMEOUT_S
    ) as client:
        yield Api(client)


@pytest.fixture
async def stub(stack: Stack) -> AsyncIterator[Stub]:
    async with httpx.AsyncClient(base_url=stack.stub_url, timeout=HTTP_TIMEOUT_S) as client:
        controlled = Stub(client)
        await controlled.reset()
        yield controlled
        await controlled.reset()  # a test's faults end with it
