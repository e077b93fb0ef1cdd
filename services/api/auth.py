"""Bearer-token authentication of every ``/api/v1`` route."""

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="The token from MAILER_API_TOKEN.")

_REFUSAL = "missing or invalid bearer token"

Middleware = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]


def _token_ok(request: Request, given: str) -> bool:
    expected: str = request.app.state.api_token
    # Constant-time comparison: timing must not reveal how much of a guess was right.
    return secrets.compare_digest(given.encode(), expected.encode())


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The route's dependency: checks the token and declares the scheme in the OpenAPI."""
    if not _token_ok(request, credentials.credentials if credentials else ""):
        raise Unauthorized(_REFUSAL)


def token_gate(prefix: str) -> Middleware:
    """Refuse requests under ``prefix`` without the token before any route reads them.

    FastAPI parses a JSON body before it runs dependencies, so the dependency alone answers a
    malformed body with 422 to a caller that has no token at all.
    """

    async def gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith(prefix):
            credentials = await _bearer(request)
            if not _token_ok(request, credentials.credentials if credentials else ""):
                return JSONResponse(
                    {"detail": _REFUSAL}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
        return await call_next(request)

    return gate
