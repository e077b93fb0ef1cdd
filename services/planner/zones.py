"""Dispatching windowed mailings zone by zone, as each zone's send window opens.

Clients of one time zone share every opening and closing of a mailing's window, so the
planner keeps one row per (mailing, zone) with the instant to look at it again, rather than
scanning every pending message on every tick. A visit to a due zone:

- window open: dispatch a batch of the zone's pending messages, then sleep until the window
  closes; a full batch (or a failed publish) leaves the zone due, for the next tick;
- window closed: sleep until the next opening, the messages staying ``pending``;
- next opening at or after the mailing's ``end_at``: the zone's pending messages expire.

A sleep is written last, in the transaction that claimed the batch (or expired the messages),
only for the zone version the visit read, and, but for a closed window, only once no message
of the zone is left pending. A wake-up that lands meanwhile (the audience
being materialised, a client moving zone, a sender putting a message back; see
:mod:`shared.zone_wakes`) bumps the version, so the sleep does not apply and the zone is
visited again; and a planner dying before the commit leaves the zone due, not asleep with
its messages unsent until the window closes.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.contextvars import bound_contextvars

from services.planner import sql
from services.planner.dispatch import WorkPublisher, publish_claimed
from shared.logs import get_logger
from shared.timezones import zone_or_utc
from shared.windows import WINDOW_NEVER_OPENS, Window, is_open, next_closing, next_opening

log = get_logger(__name__)


@dataclass(frozen=True)
class Zone:
    """One zone of a running windowed mailing, due a visit."""

    mailing_id: int
    timezone: str
    version: int
    """The version read with the zone: a sleep is written only while it is still current."""
    window: Window
    end_at: datetime


@dataclass(frozen=True)
class Visit:
    """What one visit did."""

    published: int = 0
    expired: int = 0
    more: bool = False
    """The zone is due again at once: a full batch, or a publish that failed."""
    broker_failed: bool = False


async def due_zones(engine: AsyncEngine, now: datetime, limit: int) -> list[Zone]:
    """Up to ``limit`` zones whose wake-up has come, most overdue first.

    Zones of finished and cancelled mailings are retired first, so they are not read again.
    """
    async with engine.begin() as connection:
        await connection.execute(sql.RETIRE_ZONES, {"now": now})
        rows = await connection.execute(sql.DUE_ZONES, {"now": now, "limit": limit})
        return [
            Zone(
                row.mailing_id,
                row.timezone,
                row.version,
                Window(row.window_start, row.window_end),
                row.end_at,
            )
            for row in rows
        ]


async def visit(
    engine: AsyncEngine, publisher: WorkPublisher, zone: Zone, now: datetime, batch_size: int
) -> Visit:
    """Dispatch, put to sleep or expire one zone, as its window stands at ``now``."""
    with bound_contextvars(mailing_id=zone.mailing_id, timezone=zone.timezone):
        rules = zone_or_utc(zone.timezone)
        if is_open(zone.window, rules, now):
            closing = next_closing(zone.window, rules, now)
            return await _dispatch(engine, publisher, zone, closing, batch_size)
        opening = next_opening(zone.window, rules, now)
        if opening < zone.end_at:
            async with engine.begin() as connection:
                await _sleep(connection, zone, opening)
            log.debug("window.closed", next_opening_at=opening.isoformat())
            return Visit()
        return await _expire(engine, zone, batch_size)


async def _dispatch(
    engine: AsyncEngine, publisher: WorkPublisher, zone: Zone, closing: datetime, batch_size: int
) -> Visit:
    """One batch of an open zone, then its sleep until ``closing`` unless more is left."""
    params = {"mailing_id": zone.mailing_id, "timezone": zone.timezone, "batch_size": batch_size}
    async with engine.begin() as connection:
        batch = await publish_claimed(
            connection, publisher, zone.mailing_id, sql.CLAIM_ZONE_BATCH, params
        )
        more = batch.failed > 0 or batch.published == batch_size
        if not more:
            await _sleep(connection, zone, closing, sql.SLEEP_ZONE_IF_EMPTY)
    return Visit(published=batch.published, more=more, broker_failed=batch.failed > 0)


async def _expire(engine: AsyncEngine, zone: Zone, limit: int) -> Visit:
    """The window opens again only at or after ``end_at``: nothing here will be sent."""
    params = {
        "mailing_id": zone.mailing_id,
        "timezone": zone.timezone,
        "limit": limit,
        "last_error": WINDOW_NEVER_OPENS,
    }
    async with engine.begin() as connection:
        result = await connection.execute(sql.EXPIRE_ZONE, params)
        expired = int(getattr(result, "rowcount", 0))
        more = expired == limit
        if not more:
            await _sleep(connection, zone, None, sql.SLEEP_ZONE_IF_EMPTY)
    if expired:
        log.warning("messages.expired", count=expired, reason=WINDOW_NEVER_OPENS)
    return Visit(expired=expired, more=more)


async def _sleep(
    connection: AsyncConnection,
    zone: Zone,
    wake_at: datetime | None,
    statement: TextClause = sql.SLEEP_ZONE,
) -> None:
    params = {
        "mailing_id": zone.mailing_id,
        "timezone": zone.timezone,
        "version": zone.version,
        "wake_at": wake_at,
    }
    await connection.execute(statement, params)
