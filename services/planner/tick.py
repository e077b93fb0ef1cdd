"""A planner tick, in two halves: start due mailings and materialise; dispatch, expire, finish.

Every step claims its rows, so any number of planners may tick at once; and every step is
bounded, so a tick ends soon and says whether work was left over.

A running planner splits the tick in two loops of their own: the audience (start, materialise)
and delivery (dispatch, zones, settle, finish). Taking turns in one loop, a million-client
audience waited behind each round of dispatch batches, which go at the senders' pace: about
40 s a round, for 1.6 s of chunks. :func:`tick` still runs both halves, one after the other.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.planner import audience, lifecycle, zones
from services.planner.dispatch import WorkPublisher, dispatch_batch, dispatchable
from services.planner.room import Room
from services.planner.settings import PlannerSettings
from shared.db import is_transient
from shared.logs import get_logger

log = get_logger(__name__)

# One step on one mailing: (rows it handled, whether that mailing has more to do).
Step = Callable[[int], Awaitable[tuple[int, bool]]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Planner:
    """What a tick works with: one per planner process."""

    engine: AsyncEngine
    publisher: WorkPublisher
    settings: PlannerSettings
    audience_started: dict[int, float] = field(default_factory=dict)
    """Monotonic time this process began materialising each mailing, for its duration."""
    clock: Callable[[], datetime] = utc_now
    """What time it is, for send windows: the same clock the senders check them by."""
    last_dispatched: int = 0
    """The mailing that got the last batch. The next tick's turns start after it: when the
    work queue's bound leaves room for a batch or two a tick, each mailing gets its share."""
    zones_first: bool = False
    """Whether the next delivery tick visits zones before the other mailings' turns. It
    alternates: under the work queue's bound, whichever goes first takes the room."""


@dataclass
class TickReport:
    """What one tick did."""

    started: int = 0
    materialised: int = 0
    completed: int = 0
    """Audiences whose last chunk ran: their mailings may finish (an empty one at once)."""
    dispatched: int = 0
    expired: int = 0
    cancelled: int = 0
    finished: int = 0
    more_work: bool = False
    """A bound was reached with work left: the next tick should start at once."""


async def tick(planner: Planner) -> TickReport:
    """Both halves once, audience first. Database errors propagate; a broker failure stops
    dispatching only."""
    report = await audience_tick(planner)
    delivered = await delivery_tick(planner)
    delivered.started, delivered.materialised = report.started, report.materialised
    delivered.completed = report.completed
    delivered.more_work = delivered.more_work or report.more_work
    return delivered


async def audience_tick(planner: Planner) -> TickReport:
    """Start the mailings that are due and materialise their audiences, a bounded amount."""
    report = TickReport()
    report.started = len(await lifecycle.start_due(planner.engine))
    report.materialised, report.completed, report.more_work = await _materialise(planner)
    return report


async def delivery_tick(planner: Planner) -> TickReport:
    """Dispatch, visit the due zones, cancel and expire, finish: each a bounded amount."""
    report = TickReport()
    room = Room(planner.publisher, planner.settings.planner_work_queue_max)
    if planner.zones_first:
        more_zones = await _visit_zones(planner, report, room)
        more_dispatch = await _dispatch(planner, report, room)
    else:
        more_dispatch = await _dispatch(planner, report, room)
        more_zones = await _visit_zones(planner, report, room)
    planner.zones_first = not planner.zones_first
    more_settling = await _settle(planner, report)
    report.finished = len(await lifecycle.finish(planner.engine))
    report.more_work = more_dispatch or more_zones or more_settling
    return report


async def _take_turns(mailing_ids: list[int], step: Step, rounds: int) -> tuple[int, bool]:
    """Run ``step`` on each mailing in turn, at most ``rounds`` times each.

    Taking turns keeps one big mailing from holding the others back. Returns the rows
    handled and whether any mailing had more left.
    """
    total, left = 0, mailing_ids
    for _ in range(rounds):
        still_left = []
        for mailing_id in left:
            count, more = await step(mailing_id)
            total += count
            if more:
                still_left.append(mailing_id)
        left = still_left
        if not left:
            break
    return total, bool(left)


async def _materialise(planner: Planner) -> tuple[int, int, bool]:
    """Messages created, audiences completed, and whether any audience has more to scan."""
    settings, clock = planner.settings, planner.audience_started
    mailing_ids = await audience.unmaterialised(planner.engine)
    for gone in set(clock) - set(mailing_ids):
        del clock[gone]  # completed by another replica, or cancelled
    completed = 0

    async def step(mailing_id: int) -> tuple[int, bool]:
        nonlocal completed
        started = clock.setdefault(mailing_id, time.monotonic())
        chunk = await audience.materialise_chunk(
            planner.engine, mailing_id, settings.planner_audience_chunk_size
        )
        if chunk.total is not None:
            completed += 1
            del clock[mailing_id]
            duration_ms = round((time.monotonic() - started) * 1000)
            log.info(
                "audience.materialised",
                mailing_id=mailing_id,
                count=chunk.total,
                duration_ms=duration_ms,
            )
        return chunk.inserted, chunk.more

    inserted, more = await _take_turns(mailing_ids, step, settings.planner_batches_per_tick)
    return inserted, completed, more


async def _dispatch(planner: Planner, report: TickReport, room: Room) -> bool:
    """Give mailings without a window a batch each in turn; whether one has more."""
    batch_size = planner.settings.planner_dispatch_batch_size
    broker_failed = False

    async def step(mailing_id: int) -> tuple[int, bool]:
        nonlocal broker_failed
        if broker_failed or not await room.has_some():
            # The broker is in trouble, or the senders are behind: a later tick does the rest.
            return 0, False
        batch = await dispatch_batch(planner.engine, planner.publisher, mailing_id, batch_size)
        broker_failed = batch.failed > 0
        room.took(batch.published)
        if batch.published:
            planner.last_dispatched = mailing_id
        # An audience still being materialised gets its first batch only (sql.DISPATCHABLE);
        # its completion wakes this loop for the rest.
        full = batch.published == batch_size
        return batch.published, full and mailings[mailing_id]

    mailings = await dispatchable(planner.engine)
    # Ids after the last one served first, then the others, each part in id order.
    order = sorted(mailings, key=lambda mailing_id: mailing_id <= planner.last_dispatched)
    dispatched, more = await _take_turns(order, step, planner.settings.planner_batches_per_tick)
    report.dispatched += dispatched
    return more


async def _visit_zones(planner: Planner, report: TickReport, room: Room) -> bool:
    """Visit the zones of windowed mailings that are due; whether some are due again."""
    settings = planner.settings
    batch_size, limit = settings.planner_dispatch_batch_size, settings.planner_zones_per_tick
    due = await zones.due_zones(planner.engine, planner.clock(), limit)
    more = len(due) == limit
    for zone in due:
        if not await room.has_some():
            # Left due, most overdue first next time, or expired at end_at all the same.
            return False
        # The clock is read for each visit: visits wait for the broker, and a zone judged by
        # a stale instant could be dispatched after its window closed.
        visit = await zones.visit(
            planner.engine, planner.publisher, zone, planner.clock(), batch_size
        )
        report.dispatched += visit.published
        report.expired += visit.expired
        room.took(visit.published)
        more = more or visit.more
        if visit.broker_failed:
            break  # the broker is in trouble: leave the rest to a later tick
    return more


async def _settle(planner: Planner, report: TickReport) -> bool:
    """Cancel orphaned and expire late messages; whether a bound left some for later."""
    settings, engine = planner.settings, planner.engine
    limit, rounds = settings.planner_dispatch_batch_size, settings.planner_batches_per_tick
    grace_s = settings.planner_queued_grace_s
    report.cancelled, more_orphans = await _repeat(
        lambda: lifecycle.cancel_orphans(engine, limit, grace_s), limit, rounds
    )
    expired_pending, more_pending = await _repeat(
        lambda: lifecycle.expire_pending(engine, limit), limit, rounds
    )
    expired_queued, more_queued = await _repeat(
        lambda: lifecycle.expire_queued(engine, limit, grace_s), limit, rounds
    )
    report.expired += expired_pending + expired_queued
    return more_orphans or more_pending or more_queued


async def _repeat(
    statement: Callable[[], Awaitable[int]], limit: int, rounds: int
) -> tuple[int, bool]:
    """Run a bounded statement until it handles fewer than ``limit`` rows, ``rounds`` at most."""
    total = 0
    for _ in range(rounds):
        count = await statement()
        total += count
        if count < limit:
            return total, False
    return total, True


async def tick_safely(
    planner: Planner,
    half: Callable[[Planner], Awaitable[TickReport]] = tick,
    on_progress: Callable[[], None] | None = None,
) -> bool:
    """One tick, or one ``half`` of it, for a runner: whether work was left over.

    ``on_progress`` is called when the tick started, materialised or completed something: the
    delivery loop then has messages to dispatch, or a mailing to finish, before its next
    interval.

    The database being unreachable or restarting is expected trouble: logged, and the next
    tick tries again. Everything a tick wrote before that is committed and stays.
    """
    started = time.monotonic()
    try:
        report = await half(planner)
    except (DBAPIError, OSError) as exc:
        if not is_transient(exc):
            raise
        log.warning("tick.failed", error=type(exc).__name__, half=half.__name__)
        return False
    progressed = report.started or report.materialised or report.completed or report.more_work
    if on_progress is not None and progressed:
        on_progress()
    duration_ms = round((time.monotonic() - started) * 1000)
    log.debug("tick.done", half=half.__name__, duration_ms=duration_ms, **asdict(report))
    return report.more_work
