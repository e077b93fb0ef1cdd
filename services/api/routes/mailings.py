"""Mailing routes: create, list, read with statistics, change, cancel, delete, messages."""

from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from services.api import rules
from services.api.convert import mailing_columns, mailing_out
from services.api.deps import Events, MailingId, Session, error_responses
from services.api.pagination import Cursor, Limit, decode_cursor, page
from services.api.queries import mailings as queries
from services.api.schemas import MailingCreate, MailingOut, MailingUpdate, MessageOut, Page
from shared.logs import bind_ids, get_logger
from shared.messages import ControlEvent
from shared.statuses import MailingStatus, MessageStatus

router = APIRouter(prefix="/mailings", tags=["mailings"])
log = get_logger(__name__)


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(400))
async def create_mailing(body: MailingCreate, session: Session, events: Events) -> MailingOut:
    """Create a mailing. One whose start is now or past starts at once."""
    rules.check_end_in_future(body.end_at, datetime.now(UTC))
    async with session.begin():
        mailing, counts = await queries.create(session, mailing_columns(dict(body)))
    bind_ids(mailing_id=mailing.id)
    log.info("mailing.created", start_at=mailing.start_at.isoformat())
    # Wakes the planners: a mailing due now starts without waiting for the next tick.
    await events.publish(ControlEvent(kind="mailing_created", mailing_id=mailing.id))
    return mailing_out(mailing, counts)


@router.get("", responses=error_responses())
async def list_mailings(
    session: Session,
    status: MailingStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MailingOut]:
    """Mailings in id order, each with its statistics."""
    async with session.begin():
        rows = await queries.page(
            session, after_id=decode_cursor(cursor), limit=limit + 1, status=status
        )
    return page(rows, limit, lambda row: mailing_out(*row), lambda row: row[0].id)


@router.get("/{mailing_id}", responses=error_responses(404))
async def get_mailing(mailing_id: MailingId, session: Session) -> MailingOut:
    """The mailing and its statistics."""
    async with session.begin():
        return mailing_out(*await queries.get(session, mailing_id))


@router.patch("/{mailing_id}", responses=error_responses(400, 404, 409))
async def update_mailing(
    mailing_id: MailingId, body: MailingUpdate, session: Session, events: Events
) -> MailingOut:
    """Scheduled: any field. Running: only ``end_at``, in the future. Otherwise 409."""
    bind_ids(mailing_id=mailing_id)
    changes = body.changes()
    async with session.begin():
        # The row lock orders this against the planner starting the mailing meanwhile.
        mailing, _ = await queries.get(session, mailing_id, lock=True)
        rules.check_patch(mailing_id, mailing.status, changes, datetime.now(UTC))
        rules.check_end_after_start(
            changes.get("start_at", mailing.start_at), changes.get("end_at", mailing.end_at)
        )
        mailing, counts = await queries.save(session, mailing, mailing_columns(changes))
    log.info("mailing.updated", fields=sorted(changes))
    await events.publish(ControlEvent(kind="mailing_changed", mailing_id=mailing_id))
    return mailing_out(mailing, counts)


@router.post("/{mailing_id}/cancel", responses=error_responses(404, 409))
async def cancel_mailing(mailing_id: MailingId, session: Session, events: Events) -> MailingOut:
    """Stop the mailing: unsent messages become ``cancelled``; records stay. Idempotent."""
    bind_ids(mailing_id=mailing_id)
    async with session.begin():
        mailing, _ = await queries.get(session, mailing_id, lock=True)
        rules.check_cancel(mailing_id, mailing.status)
        cancelled = await queries.cancel_messages(session, mailing_id)
        mailing, counts = await queries.save(session, mailing, {"status": MailingStatus.CANCELLED})
    log.info("mailing.cancelled", cancelled_messages=cancelled)
    await events.publish(ControlEvent(kind="mailing_cancelled", mailing_id=mailing_id))
    return mailing_out(mailing, counts)


@router.delete(
    "/{mailing_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
async def delete_mailing(mailing_id: MailingId, session: Session, events: Events) -> Response:
    """Remove the mailing and all its messages; nothing more of it is sent."""
    bind_ids(mailing_id=mailing_id)
    async with session.begin():
        await queries.get(session, mailing_id, for_delete=True)
        await queries.delete(session, mailing_id)
    log.info("mailing.deleted")
    await events.publish(ControlEvent(kind="mailing_deleted", mailing_id=mailing_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{mailing_id}/messages", responses=error_responses(404))
async def list_messages(
    mailing_id: MailingId,
    session: Session,
    status: MessageStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MessageOut]:
    """The mailing's messages in id order: the detailed statistics."""
    async with session.begin():
        await queries.exists(session, mailing_id)
        found = await queries.messages_page(
            session, mailing_id, after_id=decode_cursor(cursor), limit=limit + 1, status=status
        )
    return page(found, limit, MessageOut.model_validate, lambda m: m.id)
