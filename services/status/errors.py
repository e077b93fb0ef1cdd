"""Errors of the status service, under one root, and which database failures are transient."""

from sqlalchemy.exc import DBAPIError

from shared.db import is_transient, sqlstate


class StatusError(Exception):
    """Base of every error the status service raises."""


class DatabaseUnavailable(StatusError):
    """PostgreSQL cannot be reached or refused for now; the same batch can be retried as is."""


class DatabaseFailed(StatusError):
    """PostgreSQL refused a batch for a reason a retry alone will not fix (a bug, most likely)."""


def translate(exc: BaseException) -> StatusError:
    """Our error for a failure of a database call: unavailable (retry as is) or failed."""
    state = sqlstate(exc) if isinstance(exc, DBAPIError) else ""
    if is_transient(exc):
        return DatabaseUnavailable(f"database unavailable: {state or type(exc).__name__}")
    if isinstance(exc, DBAPIError):
        return DatabaseFailed(f"database refused the batch: SQLSTATE {state or '?'}")
    return DatabaseFailed(f"database call failed: {type(exc).__name__}")
