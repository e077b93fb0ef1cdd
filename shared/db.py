"""The async engine and session factory every service uses."""

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings, *, pre_ping: bool = True) -> AsyncEngine:
    """One pool per process; ``pool_pre_ping`` survives a PostgreSQL restart.

    ``pre_ping=False`` is for a caller that treats a failed statement as "try again later"
    anyway: the ping costs three round trips per checkout, and after a restart the first
    statement on a stale connection fails once, which invalidates the whole pool.
    """
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=pre_ping,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work each; never shared between tasks."""
    return async_sessionmaker(engine, expire_on_commit=False)


# SQLSTATEs that mean "try again later", not "this statement is wrong": connection failures
# (08), too many clients (53), shutting down or starting up (57P), a missing database (3D000),
# and the two transaction conflicts a retry resolves (40001 serialization, 40P01 deadlock).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "3D000", "40001", "40P01")


def sqlstate(exc: DBAPIError) -> str:
    """The server's SQLSTATE for the failure, or "" when it failed before the server said one."""
    return str(getattr(exc.orig, "sqlstate", "") or "")


def is_transient(exc: BaseException) -> bool:
    """True when the same work may succeed later unchanged: the database is away or busy."""
    if isinstance(exc, (OSError, PoolTimeout, TimeoutError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    state = sqlstate(exc)
    if exc.connection_invalidated or state.startswith(_TRANSIENT_SQLSTATE_PREFIXES):
        return True
    # Raised while connecting, before the server said anything (refused, reset).
    return not state and isinstance(exc, (OperationalError, InterfaceError))
