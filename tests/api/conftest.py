"""An API application over the test database, and HTTP clients for it."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from shared.settings import ApiSettings, BrokerSettings, DatabaseSettings

API_TOKEN = "test-api-token-5f1c9a"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        ApiSettings(api_token=SecretStr(API_TOKEN)),
        DatabaseSettings(database_url=database_url),
        BrokerSettings(),
    )
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def api(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the API token (and empties the tables first, via ``engine``)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=AUTH) as c:
        yield c


@pytest.fixture
async def anon(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client without any token."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def create_client(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.post("/api/v1/clients", json={"phone": "79161234567", **fields})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
