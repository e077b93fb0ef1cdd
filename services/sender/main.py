"""Entry point of the sender (``mailer sender``)."""

from services.sender.app import SenderConfig, running
from services.sender.settings import SenderSettings
from shared import runtime
from shared.logs import configure_logging, get_logger
from shared.settings import (
    BrokerSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    ProviderSettings,
    load_settings,
    secret_values,
)


def run() -> None:
    """Load the settings, set up logging, and consume work until SIGINT or SIGTERM."""
    config = SenderConfig(
        sender=load_settings(SenderSettings),
        provider=load_settings(ProviderSettings),
        database=load_settings(DatabaseSettings),
        broker=load_settings(BrokerSettings),
        health=load_settings(HealthSettings),
    )
    logs = load_settings(LogSettings)
    configure_logging(
        level=logs.log_level,
        log_format=logs.log_format,
        secrets=secret_values(config.provider, config.database, config.broker),
    )
    runtime.run(_serve(config))


async def _serve(config: SenderConfig) -> None:
    log = get_logger(__name__)
    stop = runtime.stop_on_signals()
    async with running(config):
        log.info("sender.started", prefetch=config.sender.sender_prefetch)
        await stop.wait()
        log.info("sender.stopping")
    log.info("sender.stopped")
