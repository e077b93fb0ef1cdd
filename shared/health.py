"""``/healthz`` and ``/readyz`` for the services without an HTTP server of their own.

The planner, the senders and the status service each serve the same two routes on
``MAILER_HEALTH_PORT`` (none when it is unset). ``/readyz`` runs the service's checks, each a
small coroutine that returns ``None`` when all is well or a reason in words, bounded by
``MAILER_HEALTH_CHECK_TIMEOUT_S``. The same checks also run every few seconds without a
probe, so that a flip to not ready is logged once when it happens, probed or not.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress

from aio_pika.abc import AbstractConnection
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.broker import is_connected
from shared.logs import get_logger
from shared.settings import HealthSettings

log = get_logger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: ``None`` when ready, else why not (no secrets: it is served)."""

OK = "ok"
WATCH_INTERVAL_S = 5.0
"""How often the checks run between probes, so that a flip is logged when it happens."""


class Readiness:
    """Runs a service's checks and logs when the outcome flips, not on every run."""

    def __init__(self, checks: Mapping[str, Check], timeout_s: float) -> None:
        self._checks = dict(checks)
        self._timeout_s = timeout_s
        self._running: asyncio.Task[dict[str, str]] | None = None
        self._failing: dict[str, str] = {}
        self._closed = False

    async def evaluate(self) -> dict[str, str]:
        """Every check's outcome by name: ``ok`` or the reason it fails.

        Probes that arrive while the checks run share that run instead of starting another.
        """
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run(), name="readiness")
        return await asyncio.shield(self._running)

    async def close(self) -> None:
        """Stop checking: what a stopping service's checks say is not worth a warning.

        A run in progress may finish (it is bounded): cut off, it would leave a broker
        channel closing mid-declare, with a warning of its own.
        """
        self._closed = True
        if self._running is None:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._running), self._timeout_s)
        self._running.cancel()
        with suppress(asyncio.CancelledError):
            await self._running

    async def _run(self) -> dict[str, str]:
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._bounded(self._checks[name]) for name in names))
        found = dict(zip(names, outcomes, strict=True))
        if not self._closed:
            self._note(found)
        return found

    async def _bounded(self, check: Check) -> str:
        try:
            async with asyncio.timeout(self._timeout_s):
                reason = await check()
        except TimeoutError:
            return f"no answer within {self._timeout_s:g} s"
        except Exception as exc:  # any failure means "not ready"; its type says enough
            return f"failed: {type(exc).__name__}"
        return OK if reason is None else reason

    def _note(self, found: dict[str, str]) -> None:
        failing = {name: outcome for name, outcome in found.items() if outcome != OK}
        if failing and not self._failing:
            log.warning("readiness.lost", failing=failing)
        elif self._failing and not failing:
            log.info("readiness.restored")
        elif failing.keys() != self._failing.keys():
            log.warning("readiness.changed", failing=failing)
        self._failing = failing


Connected = Callable[[], Awaitable[bool]]
"""Whether one broker connection is up right now."""


def is_open(connection: AbstractConnection) -> Connected:
    """An aio-pika connection is up when open and not in the middle of reconnecting."""

    async def connected() -> bool:
        return is_connected(connection)

    return connected


def broker_check(**connections: Connected) -> Check:
    """Ready while every named broker connection is up."""

    async def check() -> str | None:
        down = [name for name, connected in connections.items() if not await connected()]
        return f"connection down: {', '.join(down)}" if down else None

    return check


def database_check(engine: AsyncEngine) -> Check:
    """Ready when the service's own pool hands out a connection that answers ``SELECT 1``."""

    async def check() -> str | None:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # refused, reset, auth, too many clients: all "unavailable"
            return f"unavailable: {type(exc).__name__}"
        return None

    return check


def _routes(readiness: Readiness) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": OK})

    async def readyz(_request: web.Request) -> web.Response:
        checks = await readiness.evaluate()
        ready = all(outcome == OK for outcome in checks.values())
        body = {"status": OK if ready else "unavailable", "checks": checks}
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@asynccontextmanager
async def serving(
    settings: HealthSettings | None, checks: Callable[[HealthSettings], Mapping[str, Check]]
) -> AsyncIterator[Readiness | None]:
    """Serve ``/healthz`` and ``/readyz`` over the checks ``checks(settings)`` builds, until
    the block exits.

    Nothing is served, and nothing checked, without a port. A port that cannot be bound fails
    the start-up: a configured health server that is absent would read as a dead service.
    """
    if settings is None or settings.health_port is None:
        yield None
        return
    readiness = Readiness(checks(settings), settings.health_check_timeout_s)
    runner = web.AppRunner(_routes(readiness), access_log=None)
    await runner.setup()
    watch: asyncio.Task[None] | None = None
    try:
        await web.TCPSite(runner, settings.health_host, settings.health_port).start()
        log.info("health.serving", host=settings.health_host, port=settings.health_port)
        watch = asyncio.create_task(_watch(readiness), name="readiness-watch")
        yield readiness
    finally:
        if watch is not None:
            watch.cancel()
            with suppress(asyncio.CancelledError):
                await watch
        await runner.cleanup()
        await readiness.close()


async def _watch(readiness: Readiness) -> None:
    while True:
        started = time.monotonic()
        await readiness.evaluate()
        await asyncio.sleep(max(0.0, WATCH_INTERVAL_S - (time.monotonic() - started)))
