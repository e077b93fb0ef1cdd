"""Entry point of the planner (``mailer planner``): settings, connections, ticks, shutdown."""

import asyncio
from contextlib import suppress
from functools import partial

from aio_pika.abc import AbstractRobustConnection

from services.planner import control, health
from services.planner.health import TickWatch
from services.planner.runner import TickRunner
from services.planner.settings import PlannerSettings
from services.planner.tick import Planner, audience_tick, delivery_tick, tick_safely
from shared import runtime
from shared.broker import BrokerError, Publisher, connect
from shared.db import create_engine
from shared.health import serving
from shared.logs import configure_logging, get_logger
from shared.settings import (
    BrokerSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    load_settings,
    secret_values,
)

log = get_logger(__name__)

BROKER_RETRY_S = 2.0
"""Wait between attempts to reach RabbitMQ at start-up."""


def run() -> None:
    """Load the settings, set up logging and tick until SIGINT or SIGTERM."""
    planner = load_settings(PlannerSettings)
    database = load_settings(DatabaseSettings)
    broker = load_settings(BrokerSettings)
    health_settings = load_settings(HealthSettings)
    logs = load_settings(LogSettings)
    configure_logging(
        level=logs.log_level, log_format=logs.log_format, secrets=secret_values(database, broker)
    )
    runtime.run(_main(planner, database, broker, health_settings))


async def _main(
    planner: PlannerSettings,
    database: DatabaseSettings,
    broker: BrokerSettings,
    health_settings: HealthSettings,
) -> None:
    stop = runtime.stop_on_signals()
    await serve(planner, database, broker, stop, health_settings)


async def serve(
    settings: PlannerSettings,
    database: DatabaseSettings,
    broker: BrokerSettings,
    stop: asyncio.Event,
    health_settings: HealthSettings | None = None,
) -> None:
    """Tick until ``stop`` is set; then finish the ticks in progress (one per loop) and close
    the connections.

    ``/healthz`` and ``/readyz`` are served once connected, if ``health_settings`` has a port.
    """
    engine = create_engine(database)
    connection = await _connect(broker.rabbitmq_url.get_secret_value(), stop)
    if connection is None:
        await engine.dispose()
        return
    try:
        planner = Planner(engine, await Publisher.open(connection), settings)
        interval_s = settings.planner_tick_interval_s
        delivery_ticks, audience_ticks = TickWatch(), TickWatch()
        delivery = TickRunner(
            delivery_ticks.watching(partial(tick_safely, planner, delivery_tick)),
            interval_s,
            "delivery",
        )
        # Its own loop: a big audience is not held back by dispatch batches, nor they by it.
        audience = TickRunner(
            audience_ticks.watching(
                partial(tick_safely, planner, audience_tick, on_progress=delivery.wake)
            ),
            interval_s,
            "audience",
        )
        checks = partial(
            health.checks,
            connection=connection,
            engine=engine,
            ticks={"delivery": delivery_ticks, "audience": audience_ticks},
            interval_s=interval_s,
        )
        delivery.start()
        audience.start()
        try:
            await control.listen(connection, partial(_wake, audience, delivery))
            async with serving(health_settings, checks):
                log.info("planner.started", tick_interval_s=interval_s)
                await stop.wait()
        finally:
            # Both to their end even if one fails: the connections close right after.
            await asyncio.gather(audience.stop(), delivery.stop(), return_exceptions=True)
    finally:
        await connection.close()
        await engine.dispose()
    log.info("planner.stopped")


def _wake(*runners: TickRunner) -> None:
    for runner in runners:
        runner.wake()


async def _connect(url: str, stop: asyncio.Event) -> AbstractRobustConnection | None:
    """A robust connection, retried until RabbitMQ answers; None if stopped meanwhile."""
    while not stop.is_set():
        try:
            return await connect(url)
        except BrokerError as exc:
            log.warning("broker.unreachable", error=str(exc), retry_in_s=BROKER_RETRY_S)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BROKER_RETRY_S)
    return None
