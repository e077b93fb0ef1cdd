"""Entry point of the status service (``mailer status``)."""

import asyncio

from services.status.service import start
from services.status.settings import StatusSettings
from shared import runtime
from shared.logs import configure_logging
from shared.settings import (
    BrokerSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    load_settings,
    secret_values,
)


def run() -> None:
    """Load the settings, set up logging and write results until SIGINT or SIGTERM."""
    status = load_settings(StatusSettings)
    database = load_settings(DatabaseSettings)
    broker = load_settings(BrokerSettings)
    health = load_settings(HealthSettings)
    logs = load_settings(LogSettings)
    configure_logging(
        level=logs.log_level, log_format=logs.log_format, secrets=secret_values(database, broker)
    )
    runtime.run(_serve(status, database, broker, health))


async def _serve(
    status: StatusSettings,
    database: DatabaseSettings,
    broker: BrokerSettings,
    health: HealthSettings,
) -> None:
    stop = runtime.stop_on_signals()
    service = await start(status, database, broker, health)
    stopped = asyncio.create_task(stop.wait())
    # The flusher only ends on a stop; if it ends before one, something is badly wrong and the
    # process should exit rather than consume without writing.
    await asyncio.wait([stopped, service.flusher], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    await service.stop()
