"""When ticks run: the interval job, wake-ups, one tick at a time, a graceful stop."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from services.planner.runner import TickRunner

TIMEOUT_S = 5.0
# Long enough that, within a test, only the first tick and wake-ups make ticks run.
HOUR_S = 3600.0


class FakeTick:
    """A tick that counts itself, can be held open, and reports work left when told."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.running = 0
        self.most_at_once = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.more = 0
        self.fail = False
        self.changed = asyncio.Condition()

    async def __call__(self) -> bool:
        self.started += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await self._notify()
        try:
            await self.gate.wait()
            if self.fail:
                raise RuntimeError("a bug in the tick")
        finally:
            self.running -= 1
            self.finished += 1
            await self._notify()
        self.more = max(self.more - 1, 0)
        return self.more > 0

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, *, started: int = 0, finished: int = 0) -> None:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(
                    lambda: self.started >= started and self.finished >= finished
                ),
                TIMEOUT_S,
            )


@pytest.fixture
async def fake() -> FakeTick:
    return FakeTick()


@pytest.fixture
async def runner(fake: FakeTick) -> AsyncIterator[TickRunner]:
    ticking = TickRunner(fake, HOUR_S)
    ticking.start()
    yield ticking
    fake.gate.set()
    await ticking.stop()


async def test_the_first_tick_runs_at_start_and_a_wake_runs_another_at_once(
    runner: TickRunner, fake: FakeTick
) -> None:
    await fake.until(finished=1)

    runner.wake()

    await fake.until(finished=2)


async def test_the_interval_ticks_by_itself(fake: FakeTick) -> None:
    ticking = TickRunner(fake, 0.05)
    ticking.start()

    await fake.until(finished=3)

    await ticking.stop()


async def test_wake_ups_during_a_tick_make_one_more_tick_never_a_concurrent_one(
    runner: TickRunner, fake: FakeTick, caplog: pytest.LogCaptureFixture
) -> None:
    await fake.until(finished=1)
    fake.gate.clear()
    runner.wake()
    await fake.until(started=2)

    for _ in range(3):
        runner.wake()
    fake.gate.set()

    await fake.until(finished=3)
    await asyncio.sleep(0.2)  # room for a wrong fourth tick to show up
    assert (fake.started, fake.most_at_once) == (3, 1)
    # APScheduler warns when a run is due while one is going, and drops that run.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_work_left_over_runs_the_next_tick_at_once(
    runner: TickRunner, fake: FakeTick
) -> None:
    await fake.until(finished=1)
    fake.more = 3

    runner.wake()

    await fake.until(finished=4)


async def test_a_failing_tick_does_not_stop_the_ticking(runner: TickRunner, fake: FakeTick) -> None:
    await fake.until(finished=1)
    fake.fail = True
    runner.wake()
    await fake.until(finished=2)
    fake.fail = False

    runner.wake()

    await fake.until(finished=3)


async def test_stop_lets_the_running_tick_finish(fake: FakeTick) -> None:
    fake.gate.clear()
    ticking = TickRunner(fake, HOUR_S)
    ticking.start()
    await fake.until(started=1)

    stopping = asyncio.create_task(ticking.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    fake.gate.set()
    await asyncio.wait_for(stopping, TIMEOUT_S)

    assert (fake.started, fake.finished) == (1, 1)
    ticking.wake()  # ignored once stopped
