"""Fixtures shared by every test: a database of this run's own, migrated with Alembic."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.vhosts import rabbitmqctl, rabbitmqctl_path, vhost
from shared.migrate import create_database, drop_database, upgrade

# The server to create test databases on; each run gets a database of its own.
ADMIN_URL = os.environ.get(
    "MAILER_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
# The RabbitMQ server; tests never use its default vhost, only vhosts they create.
BROKER_SERVER_URL = os.environ.get("MAILER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
# The vhost of this run, for the API apps the tests build (their events and readiness probe).
RUN_VHOST = f"mailer_test_run_{uuid.uuid4().hex[:12]}"
BROKER_URL = f"{BROKER_SERVER_URL.rstrip('/')}/{RUN_VHOST}"
TABLES = "clients, mailings, messages, mailing_counts"


def database_url_of(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` form asyncpg takes, from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def unique_database_name(kind: str) -> str:
    return f"mailer_{kind}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database, migrated to head, dropped after the run."""
    name = unique_database_name("test")
    asyncio.run(create_database(ADMIN_URL, name))
    url = database_url_of(name)
    upgrade(url)
    yield url
    asyncio.run(drop_database(ADMIN_URL, name))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault scenarios last: they restart the machine's PostgreSQL and RabbitMQ."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/faults/"))


@pytest.fixture(scope="session")
async def database_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    # Pre-ping: a connection the fault suite's PostgreSQL restart closed is replaced, not used.
    engine = create_async_engine(database_url, pool_pre_ping=True)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_database(database_engine: AsyncEngine) -> None:
    """Empties every table, so that the test starts from nothing."""
    async with database_engine.begin() as connection:
        await connection.exec_driver_sql(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


@pytest.fixture
def engine(database_engine: AsyncEngine, clean_database: None) -> AsyncEngine:
    """The test database, its tables empty when the test starts."""
    return database_engine


def _rabbitmqctl() -> str:
    return rabbitmqctl_path()


def _ctl(*args: str) -> None:
    rabbitmqctl(*args)


def _vhost(name: str) -> Iterator[str]:
    with vhost(BROKER_SERVER_URL, name) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def run_vhost() -> Iterator[str]:
    """The vhost named by ``BROKER_URL``, alive for the whole run."""
    yield from _vhost(RUN_VHOST)


@pytest.fixture
def vhost_url() -> Iterator[str]:
    """The AMQP URL of a fresh RabbitMQ vhost for this test, deleted afterwards.

    Queue names are fixed by the topology; a vhost per test keeps tests and runs apart.
    """
    yield from _vhost(f"mailer_test_{uuid.uuid4().hex[:12]}")
