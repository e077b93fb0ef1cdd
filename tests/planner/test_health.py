"""The planner's ``/healthz`` and ``/readyz``: up, ready, and not ready for an unreachable
database or ticks that no longer end."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from services.planner.health import TICK_STALL_MIN_S
from services.planner.main import serve
from shared.settings import BrokerSettings, DatabaseSettings, HealthSettings
from tests.planner.helpers import settings
from tests.probes import health_settings, probe, readiness_until

READY = {"broker": "ok", "database": "ok", "delivery": "ok", "audience": "ok"}
LOOPS = ("delivery", "audience")
STOP_TIMEOUT_S = 10.0


@asynccontextmanager
async def planner(
    database_url: str, vhost_url: str, health: HealthSettings, **fields: Any
) -> AsyncIterator[None]:
    """``serve`` in this process with a health server, until the block exits."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            settings(**fields),
            DatabaseSettings(_env_file=None, database_url=database_url),
            BrokerSettings(_env_file=None, rabbitmq_url=SecretStr(vhost_url)),
            stop,
            health,
        )
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, STOP_TIMEOUT_S)


async def test_a_running_planner_is_up_and_ready(
    engine: AsyncEngine, database_url: str, vhost_url: str
) -> None:
    health = health_settings()

    async with planner(database_url, vhost_url, health):
        body = await readiness_until(health, 200)
        assert await probe(health, "/healthz") == (200, {"status": "ok"})

    assert body == {"status": "ok", "checks": READY}


async def test_an_unreachable_database_makes_it_not_ready(
    vhost_url: str, database_url: str
) -> None:
    nowhere = make_url(database_url).set(port=1).render_as_string(hide_password=False)
    health = health_settings()

    async with planner(nowhere, vhost_url, health, planner_tick_interval_s=0.2):
        body = await readiness_until(health, 503)
        assert await probe(health, "/healthz") == (200, {"status": "ok"})

    assert body["checks"]["database"].startswith("unavailable: "), body
    # Ticks fail quietly on it, but they still end: the loop itself is alive.
    assert [body["checks"][loop] for loop in LOOPS] == ["ok", "ok"]
    assert body["checks"]["broker"] == "ok"


async def test_ticks_that_no_longer_end_make_it_not_ready_until_they_do(
    engine: AsyncEngine, database_url: str, vhost_url: str
) -> None:
    """A tick stuck on a lock: the database still answers, the planner does nothing."""
    health = health_settings()

    with capture_logs() as logs:
        async with planner(database_url, vhost_url, health, planner_tick_interval_s=0.2):
            await readiness_until(health, 200)
            async with engine.connect() as blocker:
                await blocker.execute(text("LOCK TABLE mailings IN ACCESS EXCLUSIVE MODE"))
                stuck = await readiness_until(health, 503, timeout_s=TICK_STALL_MIN_S + 20)
                await blocker.rollback()
            recovered = await readiness_until(health, 200)

    # Both loops read mailings first, so both get stuck behind the lock, within a tick of
    # each other: the first probe past the limit may see one or both.
    stalled = {name for name, outcome in stuck["checks"].items() if outcome != "ok"}
    assert stalled, stuck
    assert stalled <= set(LOOPS), stuck
    assert all(stuck["checks"][loop].startswith("no tick ended for ") for loop in stalled)
    assert {name: outcome for name, outcome in stuck["checks"].items() if name not in LOOPS} == {
        "broker": "ok",
        "database": "ok",
    }
    assert recovered == {"status": "ok", "checks": READY}
    # One warning when it goes, one line when it comes back. In between, the second loop
    # getting stuck after the first, and coming back before it, may each add a "changed".
    flips = [e["event"] for e in logs if e["event"].startswith("readiness.")]
    assert flips[0] == "readiness.lost"
    assert flips[-1] == "readiness.restored"
    assert flips[1:-1] in ([], ["readiness.changed"], ["readiness.changed"] * 2)
