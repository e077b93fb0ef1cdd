"""Alembic environment: runs migrations over the async engine of the configured database."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.models import Base
from shared.settings import DatabaseSettings, load_settings


def _url() -> str:
    # `mailer migrate` passes the URL in; the bare alembic command reads the settings.
    url = context.config.get_main_option("sqlalchemy.url")
    return url or load_settings(DatabaseSettings).database_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_run_async())
