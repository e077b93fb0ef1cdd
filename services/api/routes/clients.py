"""Client routes: create, list by operator code and tag, read, change, delete."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from services.api.deps import ClientId, Events, Session, error_responses
from services.api.fields import OperatorCode, Tag
from services.api.pagination import Cursor, Limit, decode_cursor, page
from services.api.queries import clients as queries
from services.api.schemas import ClientCreate, ClientOut, ClientUpdate, Page
from shared.logs import bind_ids, get_logger
from shared.messages import ControlEvent

router = APIRouter(prefix="/clients", tags=["clients"])
log = get_logger(__name__)


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 409))
async def create_client(body: ClientCreate, session: Session) -> ClientOut:
    """Create a client; 409 if the phone is taken."""
    fields = body.model_dump()
    if fields["operator_code"] is None:
        fields["operator_code"] = body.phone[1:4]
    async with session.begin():
        client = await queries.create(session, fields)
    bind_ids(client_id=client.id)
    log.info("client.created")
    return ClientOut.model_validate(client)


@router.get("", responses=error_responses())
async def list_clients(
    session: Session,
    operator_code: Annotated[OperatorCode | None, Query()] = None,
    tag: Annotated[Tag | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ClientOut]:
    """Clients in id order, optionally only those with an operator code and/or a tag."""
    async with session.begin():
        found = await queries.page(
            session,
            after_id=decode_cursor(cursor),
            limit=limit + 1,
            operator_code=operator_code,
            tag=tag,
        )
    return page(found, limit, ClientOut.model_validate, lambda c: c.id)


@router.get("/{client_id}", responses=error_responses(404))
async def get_client(client_id: ClientId, session: Session) -> ClientOut:
    """The client, or 404."""
    async with session.begin():
        return ClientOut.model_validate(await queries.get(session, client_id))


@router.patch("/{client_id}", responses=error_responses(400, 404, 409))
async def update_client(client_id: ClientId, body: ClientUpdate, session: Session) -> ClientOut:
    """Change some fields; the operator code is kept when only the phone changes."""
    bind_ids(client_id=client_id)
    async with session.begin():
        client = await queries.update_fields(session, client_id, body.changes())
    log.info("client.updated", fields=sorted(body.changes()))
    return ClientOut.model_validate(client)


@router.delete(
    "/{client_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
async def delete_client(client_id: ClientId, session: Session, events: Events) -> Response:
    """Delete the client. Its unsent messages are cancelled; its past records stay."""
    bind_ids(client_id=client_id)
    async with session.begin():
        cancelled = await queries.delete(session, client_id)
    log.info("client.deleted", cancelled_messages=cancelled)
    # Its queued messages are cancelled in the database, which the senders check before every
    # call; the event lets them drop such messages without the look-up.
    await events.publish(ControlEvent(kind="client_deleted", client_id=client_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
