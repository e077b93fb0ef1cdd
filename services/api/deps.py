"""Request-scoped dependencies shared by the routes."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.events import ControlEvents
from services.api.schemas import ErrorOut
from shared.models import MAX_ID


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(_session)]


def _events(request: Request) -> ControlEvents:
    events: ControlEvents = request.app.state.events
    return events


Events = Annotated[ControlEvents, Depends(_events)]

# Larger ids cannot exist (bigint) and would fail inside the driver instead of with a 404/422.
ClientId = Annotated[int, Path(ge=1, le=MAX_ID, description="The client's id.")]
MailingId = Annotated[int, Path(ge=1, le=MAX_ID, description="The mailing's id.")]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error responses a route can give (401 on every route).

    Routes with a JSON body list 400: FastAPI answers it, not a handler of ours, when the body
    is not even text (bytes that are not UTF-8); malformed JSON text is a 422 like any other.
    """
    return {status: {"model": ErrorOut} for status in (401, *statuses)}
