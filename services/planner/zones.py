"""Dispatching windowed mailings zone by zone, as each zone's send window opens.

Clients of one time zone share every opening and closing of a mailing's window, so the
planner keeps one row per (mailing, zone) with the instant to look at it again, rather than
scanning every pending message on every tick. A visit to a due zone:

- window open: dispatch a batch of the zone's pending messages and sleep until the window
  closes; a full batch (or a failed publish) makes the zone due again at once;
- window closed: sleep until the next opening, the messages staying ``pending``;
- next opening at or after the mailing's ``end_at``: the zone's pending messages expire.

An open zone's wake-up is written in the transaction that claims its batch, and first: the
row lock makes anything that makes a message pending in the zone meanwhile (the audience being
materialised, a client moving zone, a sender putting a message back) wait and then make the
zone due again, instead of being overwritten by the sleep; and a planner dying before the
commit leaves both the messages and the wake-up as they were, so the zone is visited again
rather than left asleep with its messages unsent until the window closes.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.contextvars import bound_contextvars

from services.planner import sql
from services.planner.dispatch import WorkPublisher, publish_claimed
from shared.logs import get_logger
from shared.timezones import zone_or_utc
from shared.windows import Window, is_open, next_closing, next_opening

log = get_logger(__name__)


@dataclass(frozen=True)
class Zone:
    """One zone of a running windowed mailing, due a visit."""

    mailing_id: int
    timezone: str
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
    """Up to ``limit`` zones whose wake-up has come, most overdue first."""
    async with engine.connect() as connection:
        rows = await connection.execute(sql.DUE_ZONES, {"now": now, "limit": limit})
        return [
            Zone(row.mailing_id, row.timezone, Window(row.window_start, row.window_end), row.end_at)
            for row in rows
        ]


async def visit(
    engine: AsyncEngine, publisher: WorkPublisher, zone: Zone, now: datetime, batch_size: int
) -> Visit:
    """Dispatch, put to sleep or expire one zone, as its window stands at ``now``."""
    with bound_contextvars(mailing_id=zone.mailing_id, timezone=zone.timezone):
        rules = zone_or_utc(zone.timezone)
        if is_open(zone.window, rules, now):
            return await _dispatch(engine, publisher, zone, now, batch_size)
        opening = next_opening(zone.window, rules, now)
        if opening < zone.end_at:
            await _wake_at(engine, zone, opening)
            log.debug("window.closed", next_opening_at=opening.isoformat())
            return Visit()
        return await _expire(engine, zone, now, batch_size)


async def _dispatch(
    engine: AsyncEngine, publisher: WorkPublisher, zone: Zone, now: datetime, batch_size: int
) -> Visit:
    """One batch of an open zone, and its sleep until the window closes, in one transaction."""
    closing = next_closing(zone.window, zone_or_utc(zone.timezone), now)
    params = {"mailing_id": zone.mailing_id, "timezone": zone.timezone, "batch_size": batch_size}
    async with engine.begin() as connection:
        await _sleep(connection, zone, closing)
        batch = await publish_claimed(
            connection, publisher, zone.mailing_id, sql.CLAIM_ZONE_BATCH, params
        )
        more = batch.failed > 0 or batch.published == batch_size
        if more:
            await _sleep(connection, zone, now)
    return Visit(published=batch.published, more=more, broker_failed=batch.failed > 0)


async def _expire(engine: AsyncEngine, zone: Zone, now: datetime, limit: int) -> Visit:
    """The window opens again only at or after ``end_at``: nothing here will be sent."""
    params = {
        "mailing_id": zone.mailing_id,
        "timezone": zone.timezone,
        "limit": limit,
        "last_error": sql.WINDOW_NEVER_OPENS,
    }
    async with engine.begin() as connection:
        await _sleep(connection, zone, None)
        result = await connection.execute(sql.EXPIRE_ZONE, params)
        expired = int(getattr(result, "rowcount", 0))
        more = expired == limit
        if more:
            await _sleep(connection, zone, now)
    if expired:
        log.warning("messages.expired", count=expired, reason=sql.WINDOW_NEVER_OPENS)
    return Visit(expired=expired, more=more)


async def _wake_at(engine: AsyncEngine, zone: Zone, wake_at: datetime | None) -> None:
    async with engine.begin() as connection:
        await _sleep(connection, zone, wake_at)


async def _sleep(connection: AsyncConnection, zone: Zone, wake_at: datetime | None) -> None:
    params = {"mailing_id": zone.mailing_id, "timezone": zone.timezone, "wake_at": wake_at}
    await connection.execute(sql.SET_WAKE, params)
