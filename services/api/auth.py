"""Bearer-token authentication of every ``/api/v1`` route."""

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="The token from MAILER_API_TOKEN.")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected: str = request.app.state.api_token
    # Constant-time comparison: timing must not reveal how much of a guess was right.
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("missing or invalid bearer token")
