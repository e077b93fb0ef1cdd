"""Fixtures shared by every test: a database of this run's own, migrated with Alembic."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.migrate import upgrade

# The server to create test databases on; each run gets a database of its own.
ADMIN_URL = os.environ.get(
    "MAILER_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
TABLES = "clients, mailings, messages, mailing_counts"


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database, migrated to head, dropped after the run."""
    name = f"mailer_test_{uuid.uuid4().hex[:12]}"
    admin = _plain_dsn(ADMIN_URL)

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> None:
    """Each test starts from empty tables (only for tests that use the database)."""
    if "engine" not in request.fixturenames:
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
