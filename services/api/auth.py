"""Bearer-token authentication of every ``/api/v1`` route."""

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.errors import Unauthorized, response_for

_bearer = HTTPBearer(auto_error=False, description="The token from MAILER_API_TOKEN.")

_REFUSAL = "missing or invalid bearer token"


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


class TokenGate:
    """Refuse requests under ``prefix`` without the token before any route reads them.

    FastAPI parses a JSON body before it runs dependencies, so the dependency alone would
    answer a malformed body with 422 to a caller that has no token at all.
    """

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            request = Request(scope)
            credentials = await _bearer(request)
            if not _token_ok(request, credentials.credentials if credentials else ""):
                await response_for(Unauthorized(_REFUSAL))(scope, receive, send)
                return
        await self.app(scope, receive, send)
