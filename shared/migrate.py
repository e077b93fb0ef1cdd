"""Apply the Alembic migrations shipped inside the package (``mailer migrate``)."""

from functools import cache
from pathlib import Path

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


async def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if it is missing; True if it was created.

    Connects to the server's ``postgres`` database, so the role needs CREATEDB for a first
    run; an existing database is left alone.
    """
    url = make_url(database_url)
    name = url.database
    if not name:
        return False
    admin = url.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        quoted = name.replace('"', '""')
        await connection.execute(f'CREATE DATABASE "{quoted}"')
    finally:
        await connection.close()
    return True
