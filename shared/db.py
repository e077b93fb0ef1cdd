"""The async engine and session factory every service uses."""

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """One pool per process; ``pool_pre_ping`` survives a PostgreSQL restart."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=True,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work each; never shared between tasks."""
    return async_sessionmaker(engine, expire_on_commit=False)
