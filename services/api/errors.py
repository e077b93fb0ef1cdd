"""API errors and the one place that turns every error into an HTTP response."""

from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.routing import Match

from shared.db import is_transient, sqlstate
from shared.logs import get_logger

log = get_logger(__name__)


class ApiError(Exception):
    """Root of the API's errors; ``status`` is the HTTP status it becomes."""

    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404

    def __init__(self, kind: str, object_id: int) -> None:
        super().__init__(f"{kind} {object_id} not found")


class Conflict(ApiError):
    """The request is valid but the object's state forbids it; ``detail`` says why."""

    status = 409


class InvalidField(ApiError):
    """A field is wrong in a way only the stored object reveals (e.g. a PATCH's end_at)."""

    status = 422

    def __init__(self, field: str, message: str, source: str = "body") -> None:
        super().__init__(message)
        self.location = (source, field)


RETRY_AFTER_S = 5

_UNDEFINED_TABLE = "42P01"


def response_for(exc: ApiError) -> JSONResponse:
    """The HTTP response of one of our errors; every ApiError becomes a response here."""
    if isinstance(exc, InvalidField):
        body = {"detail": [{"loc": list(exc.location), "msg": exc.detail, "type": "value_error"}]}
        # The same shape as FastAPI's own validation errors, so clients parse one format.
        return JSONResponse(body, status_code=422)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    return response_for(cast(ApiError, exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # Echo neither inputs nor pydantic's internal context: only where and what.
    errors = [
        {
            "loc": list(error["loc"]),
            "msg": error["msg"].removeprefix("Value error, "),
            "type": error["type"],
        }
        for error in cast(RequestValidationError, exc).errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database.unavailable", error=type(exc).__name__, reason=str(exc)[:200])
    return _unavailable("the database is unavailable; retry shortly")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_transient(exc):
        return await _database_down(request, exc)
    state = sqlstate(cast(DBAPIError, exc))
    if state == _UNDEFINED_TABLE:
        log.error("database.not_migrated")
        return _unavailable("the database schema is missing; run `mailer migrate`")
    log.error("database.error", sqlstate=state, exc_info=exc)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


async def _method_not_allowed(request: Request, _exc: Exception) -> JSONResponse:
    # FastAPI makes one route per method and Starlette's 405 lists only the first route that
    # matched the path, but RFC 9110 wants Allow to list every method the resource supports.
    allowed = ", ".join(_allowed_methods(request))
    return JSONResponse(
        {"detail": f"method {request.method} is not allowed here; use {allowed}"},
        status_code=405,
        headers={"Allow": allowed},
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("request.failed", exc_info=exc)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(405, _method_not_allowed)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OSError, _database_down)
    # The pool had no free connection within its timeout: the database is overloaded.
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(Exception, _unexpected)
