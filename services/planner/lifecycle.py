"""Moving mailings along (scheduled → running → finished) and settling messages that are late."""

from collections import Counter
from collections.abc import Mapping

from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncEngine

from services.planner import sql
from shared.logs import get_logger

log = get_logger(__name__)


async def start_due(engine: AsyncEngine) -> list[int]:
    """Start every scheduled mailing whose ``start_at`` has come; returns their ids.

    A mailing whose ``end_at`` has passed too still starts: its audience is materialised and
    then expires, so its statistics show whom it was meant for.
    """
    async with engine.begin() as connection:
        rows = (await connection.execute(sql.START_DUE)).all()
    for row in rows:
        log.info(
            "mailing.started",
            mailing_id=row.id,
            audience_until_client_id=row.audience_until_client_id,
        )
    return [row.id for row in rows]


async def expire_pending(engine: AsyncEngine, limit: int) -> int:
    """Up to ``limit`` pending messages of mailings past their ``end_at`` become ``expired``."""
    params = {"limit": limit, "last_error": sql.DEADLINE_PASSED}
    return await _settle(engine, sql.EXPIRE_PENDING, params, "messages.expired", "pending")


async def expire_queued(engine: AsyncEngine, limit: int, grace_s: float) -> int:
    """Up to ``limit`` messages still queued ``grace_s`` after their ``end_at`` expire."""
    params = {"limit": limit, "grace_s": grace_s, "last_error": sql.DEADLINE_PASSED}
    return await _settle(engine, sql.EXPIRE_QUEUED, params, "messages.expired", "queued")


async def cancel_orphans(engine: AsyncEngine, limit: int, grace_s: float) -> int:
    """Up to ``limit`` messages no sender will settle become ``cancelled`` (see the SQL)."""
    params = {"limit": limit, "grace_s": grace_s}
    return await _settle(engine, sql.CANCEL_ORPHANS, params, "messages.cancelled", "open")


async def _settle(
    engine: AsyncEngine, statement: TextClause, params: Mapping[str, object], event: str, was: str
) -> int:
    async with engine.begin() as connection:
        mailing_ids = (await connection.scalars(statement, params)).all()
    for mailing_id, count in sorted(Counter(mailing_ids).items()):
        log.warning(event, mailing_id=mailing_id, count=count, was=was)
    return len(mailing_ids)


async def finish(engine: AsyncEngine) -> list[int]:
    """Finish running mailings that are materialised and have nothing pending or queued.

    A cancelled mailing is not running, so it stays cancelled.
    """
    async with engine.begin() as connection:
        rows = (await connection.execute(sql.FINISH)).all()
    for row in rows:
        log.info(
            "mailing.finished",
            mailing_id=row.id,
            sent=row.sent,
            failed=row.failed,
            expired=row.expired,
            cancelled=row.cancelled,
        )
    return [row.id for row in rows]
