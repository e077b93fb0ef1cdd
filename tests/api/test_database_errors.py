"""A database that is missing or not migrated, a broker that is down: 503s that say which."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from shared.migrate import create_database, drop_database
from tests.api.seed import AUTH, STATS, make_app
from tests.conftest import ADMIN_URL, asyncpg_dsn, database_url_of, unique_database_name

CLOSED_PORT_BROKER = "amqp://guest:guest@127.0.0.1:1/"


@asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the token to ``app``, started and stopped as a server would."""
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=AUTH) as c:
            yield c


@pytest.fixture
async def empty_database_url() -> AsyncIterator[str]:
    """A database that exists but that ``mailer migrate`` never ran on."""
    name = unique_database_name("empty")
    await create_database(ADMIN_URL, name)
    yield database_url_of(name)
    await drop_database(ADMIN_URL, name)


async def test_missing_database_is_503_with_retry_after() -> None:
    missing = database_url_of(unique_database_name("missing"))

    async with _serving(make_app(missing)) as api:
        stats = await api.get(STATS)
        ready = await api.get("/readyz")

    assert stats.status_code == 503, stats.text
    assert int(stats.headers["Retry-After"]) > 0
    assert stats.json() == {"detail": "the database is unavailable; retry shortly"}
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "broker": "ok"},
    }


async def test_database_not_migrated_is_503_naming_the_fix(empty_database_url: str) -> None:
    async with _serving(make_app(empty_database_url)) as api:
        stats = await api.get(STATS)

    assert stats.status_code == 503, stats.text
    assert int(stats.headers["Retry-After"]) > 0
    assert "mailer migrate" in stats.json()["detail"]


# PostgreSQL resolves every table a query names before it runs it, so the probe's
# `WHERE to_regclass('alembic_version') IS NOT NULL` cannot keep a missing alembic_version
# from failing the query, and the probe reports "unavailable" instead.
async def test_database_never_migrated_is_not_ready(empty_database_url: str) -> None:
    async with _serving(make_app(empty_database_url)) as api:
        ready = await api.get("/readyz")

    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "not migrated", "broker": "ok"},
    }


async def test_database_at_another_revision_is_not_ready(empty_database_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(empty_database_url))
    try:
        await connection.execute(
            "CREATE TABLE alembic_version (version_num text);"
            " INSERT INTO alembic_version VALUES ('0000')"
        )
    finally:
        await connection.close()

    async with _serving(make_app(empty_database_url)) as api:
        ready = await api.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "not migrated", "broker": "ok"}


async def test_broker_down_is_not_ready(database_url: str) -> None:
    async with _serving(make_app(database_url, broker_url=CLOSED_PORT_BROKER)) as api:
        ready = await api.get("/readyz")
        stats = await api.get(STATS)

    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unavailable"},
    }
    assert stats.status_code == 200  # the database alone serves the statistics
