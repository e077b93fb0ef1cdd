"""Apply the Alembic migrations shipped inside the package (``mailer migrate``)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

_SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """A config that needs no ``alembic.ini``, so an installed package can migrate."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    # ConfigParser interpolation would treat a '%' in a password as a reference.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@cache
def head_revision() -> str | None:
    """The newest migration this code ships; a database below it is not ready for it."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return ScriptDirectory.from_config(config).get_current_head()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run on every start."""
    command.upgrade(alembic_config(database_url), revision)


def _identifier(name: str) -> str:
    """``name`` quoted as an SQL identifier: CREATE and DROP DATABASE take no parameters."""
    return '"' + name.replace('"', '""') + '"'


@asynccontextmanager
async def _server(admin_url: str) -> AsyncIterator[Any]:
    """A plain asyncpg connection to the database of ``admin_url`` (any driver name)."""
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def create_database(admin_url: str, name: str) -> None:
    """Create the empty database ``name`` on the server ``admin_url`` points at."""
    async with _server(admin_url) as connection:
        await connection.execute(f"CREATE DATABASE {_identifier(name)}")


async def drop_database(admin_url: str, name: str) -> None:
    """Drop the database ``name`` if it exists, closing its open connections first."""
    async with _server(admin_url) as connection:
        await connection.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")


async def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if it is missing; True if it was created.

    Connects to the server's ``postgres`` database, so the role needs CREATEDB for a first
    run; an existing database is left alone.
    """
    url = make_url(database_url)
    name = url.database
    if not name:
        return False
    admin_url = url.set(database="postgres").render_as_string(hide_password=False)
    async with _server(admin_url) as connection:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await connection.execute(f"CREATE DATABASE {_identifier(name)}")
        except asyncpg.DuplicateDatabaseError:
            return False  # another `mailer migrate` created it between our check and now
    return True
