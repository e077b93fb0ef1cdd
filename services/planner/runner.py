"""When ticks run: an APScheduler interval job, woken early on demand, one tick at a time."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from shared.logs import get_logger

log = get_logger(__name__)

JOB_ID = "planner.tick"


class TickRunner:
    """Runs ``tick`` every ``interval_s`` and at once on :meth:`wake`, never two at a time.

    ``tick`` returns whether work was left over. The job is paused while a tick runs, so that a
    tick longer than the interval is not followed by a burst of "skipped" runs; when the tick
    ends the job resumes its interval, or runs again at once if work was left over or a wake-up
    came in meanwhile. Several wake-ups during one tick make one more tick, not several.
    """

    def __init__(
        self, tick: Callable[[], Awaitable[bool]], interval_s: float, name: str = "tick"
    ) -> None:
        self._tick = tick
        self._name = name
        self._interval_s = interval_s
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._job: Job | None = None
        # Clear from the job's submission until APScheduler has counted its run as over: a
        # run time set before that would be skipped as "maximum number of instances reached".
        self._idle = asyncio.Event()
        self._idle.set()
        self._again = False
        self._stopping = False

    def start(self) -> None:
        """Start ticking now; needs a running event loop."""
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self._scheduler.start()
        self._job = self._scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=self._interval_s),
            id=f"{JOB_ID}.{self._name}",
            next_run_time=datetime.now(UTC),
            # A late tick still runs (the default grace of 1 s would skip it); missed runs
            # collapse into one.
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )

    def wake(self) -> None:
        """Tick as soon as possible: now if idle, else right after the running tick."""
        if self._stopping or self._job is None:
            return
        if self._idle.is_set():
            self._job.modify(next_run_time=datetime.now(UTC))
        else:
            self._again = True

    async def stop(self) -> None:
        """Let the running tick finish, then stop: a tick is never cut off halfway."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.pause()
            await self._idle.wait()
            self._scheduler.shutdown(wait=False)

    def _on_submitted(self, _event: JobEvent) -> None:
        self._idle.clear()
        self._again = False  # earlier wake-ups are served by the tick about to start

    async def _run(self) -> bool:
        if self._stopping or self._job is None:
            return False
        self._job.pause()
        try:
            return await self._tick()
        except Exception:
            # A bug, not trouble the tick knows how to handle; ticking goes on regardless.
            log.exception("tick.crashed", loop=self._name)
            return False

    def _on_done(self, event: JobExecutionEvent) -> None:
        # Called by APScheduler once the run no longer counts as running.
        self._idle.set()
        if self._stopping or self._job is None:
            return
        if event.retval or self._again:
            self._job.modify(next_run_time=datetime.now(UTC))
        else:
            self._job.resume()
