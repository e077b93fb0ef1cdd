"""What the planner's ``/readyz`` checks: its broker connection, its database, and that its
ticks still end."""

import time
from collections.abc import Awaitable, Callable, Mapping

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.health import Check, broker_check, database_check, is_open
from shared.settings import HealthSettings

TICK_STALL_INTERVALS = 30
"""Tick intervals without a tick ending after which the tick loop counts as stuck: a tick is
bounded in work, not in time, and a big one takes seconds."""
TICK_STALL_MIN_S = 10.0
"""The same, at least this long, whatever the interval."""

Tick = Callable[[], Awaitable[bool]]


class TickWatch:
    """When the latest tick ended, whatever its outcome (a failed tick is a live loop too)."""

    def __init__(self) -> None:
        self.last_ended_at = time.monotonic()  # the start counts as one, for the first tick

    def watching(self, tick: Tick) -> Tick:
        """``tick``, noting when each run of it ends."""

        async def watched() -> bool:
            try:
                return await tick()
            finally:
                self.last_ended_at = time.monotonic()

        return watched


def tick_check(watch: TickWatch, interval_s: float) -> Check:
    """Not ready once no tick has ended for longer than the stall limit (a tick hanging on a
    lock, a scheduler that stopped)."""
    stall_s = max(TICK_STALL_INTERVALS * interval_s, TICK_STALL_MIN_S)

    async def check() -> str | None:
        age_s = time.monotonic() - watch.last_ended_at
        if age_s > stall_s:
            return f"no tick ended for {age_s:.0f} s (limit {stall_s:g} s)"
        return None

    return check


def checks(
    _settings: HealthSettings,
    *,
    connection: AbstractRobustConnection,
    engine: AsyncEngine,
    ticks: Mapping[str, TickWatch],
    interval_s: float,
) -> dict[str, Check]:
    """By name: ``broker``, ``database``, and one per tick loop in ``ticks``."""
    loops = {name: tick_check(watch, interval_s) for name, watch in ticks.items()}
    return {
        "broker": broker_check(rabbitmq=is_open(connection)),
        "database": database_check(engine),
        **loops,
    }
