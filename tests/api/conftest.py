"""An API application over the test database, and HTTP clients for it."""

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.api.seed import AUTH, make_app


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = make_app(database_url)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def api(app: FastAPI, clean_database: None) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the API token, to an API over empty tables."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=AUTH) as c:
        yield c


@pytest.fixture
async def anon(app: FastAPI, clean_database: None) -> AsyncIterator[httpx.AsyncClient]:
    """A client without any token, to an API over empty tables."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c
