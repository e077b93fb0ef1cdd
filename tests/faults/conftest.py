"""Each fault scenario runs a stack of its own: a fault must not leak into the next scenario."""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.e2e.helpers import Api, Stub, seed
from tests.e2e.stack import API_TOKEN, Shape, Stack, running_stack
from tests.waiting import eventually

HTTP_TIMEOUT_S = 10.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid:
            item.add_marker(pytest.mark.faults)


@dataclass
class Scene:
    """A running stack and the handles a scenario drives it with."""

    stack: Stack
    api: Api
    stub: Stub
    engine: AsyncEngine

    async def mailing_under_way(
        self, clients: int, *, behaviour: Mapping[str, Any] | None = None, **reached: int
    ) -> tuple[str, int]:
        """A mailing to ``clients`` new clients, with the stub behaving as ``behaviour``; once
        the stub's summary has reached ``reached`` (``successes=300``). Its run id and id."""
        if behaviour:
            await self.stub.behave(**behaviour)
        run_id, _ = await seed(self.stack.database_url, clients)
        mailing_id = (await self.api.create_mailing(run_id))["id"]
        for figure, at_least in reached.items():
            await eventually(
                self.stub.summary, lambda found, f=figure, n=at_least: found[f] >= n, 60
            )
        return run_id, mailing_id

    async def still_sending(self, clients: int, moment: str) -> dict[str, Any]:
        """The stub's summary, checked to show messages not yet requested at ``moment``: a fault
        that came after the last request interrupted nothing, and its run would show nothing."""
        summary = await self.stub.summary()
        assert summary["unique_msg_ids"] < clients, (
            f"every message had been requested {moment} ({summary}): slow the stub down"
        )
        return summary


Staging = Callable[[Shape], AbstractAsyncContextManager[Scene]]


@pytest.fixture
def staged(tmp_path: Path) -> Staging:
    """``async with staged(Shape(...)) as scene``: a stack of that shape for this test."""

    @asynccontextmanager
    async def stage(shape: Shape) -> AsyncIterator[Scene]:
        async with running_stack(shape, tmp_path) as stack:
            engine = create_async_engine(stack.database_url)
            auth = {"Authorization": f"Bearer {API_TOKEN}"}
            try:
                async with (
                    httpx.AsyncClient(
                        base_url=stack.api_url, headers=auth, timeout=HTTP_TIMEOUT_S
                    ) as api_client,
                    httpx.AsyncClient(
                        base_url=stack.stub_url, timeout=HTTP_TIMEOUT_S
                    ) as stub_client,
                ):
                    yield Scene(stack, Api(api_client), Stub(stub_client), engine)
            finally:
                await engine.dispose()

    return stage
