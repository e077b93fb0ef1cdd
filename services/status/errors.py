"""Errors of the status service, under one root, and which database failures are transient."""

import asyncio

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class StatusError(Exception):
    """Base of every error the status service raises."""


class DatabaseUnavailable(StatusError):
    """PostgreSQL cannot be reached or refused for now; the same batch can be retried as is."""


class DatabaseFailed(StatusError):
    """PostgreSQL refused a batch for a reason a retry alone will not fix (a bug, most likely)."""


# SQLSTATEs that mean "try again later", not "this statement is wrong": connection failures
# (08), too many clients (53), shutting down or starting up (57P), a missing database (3D000),
# and the two transaction conflicts a retry resolves (40001 serialization, 40P01 deadlock).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "3D000", "40001", "40P01")


def translate(exc: BaseException) -> StatusError:
    """Our error for a failure of a database call: unavailable (retry as is) or failed."""
    if isinstance(exc, (OSError, PoolTimeout, asyncio.TimeoutError)):
        return DatabaseUnavailable(f"database unreachable: {type(exc).__name__}")
    if isinstance(exc, DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
        transient = exc.connection_invalidated or sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
        if transient or (isinstance(exc, (OperationalError, InterfaceError)) and not sqlstate):
            # The last case: raised while connecting, before the server said anything.
            return DatabaseUnavailable(f"database unavailable: {sqlstate or type(exc).__name__}")
        return DatabaseFailed(f"database refused the batch: SQLSTATE {sqlstate or '?'}")
    return DatabaseFailed(f"database call failed: {type(exc).__name__}")
