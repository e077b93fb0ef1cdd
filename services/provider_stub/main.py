"""Entry point of the provider stub (``mailer stub``)."""

from services.provider_stub.app import start
from services.provider_stub.settings import StubSettings
from shared import runtime
from shared.logs import configure_logging, get_logger
from shared.settings import LogSettings, load_settings, secret_values


def run() -> None:
    """Load the settings, set up logging and serve until SIGINT or SIGTERM."""
    stub = load_settings(StubSettings)
    logs = load_settings(LogSettings)
    configure_logging(level=logs.log_level, log_format=logs.log_format, secrets=secret_values(stub))
    runtime.run(_serve(stub))


async def _serve(settings: StubSettings) -> None:
    log = get_logger(__name__)
    stop = runtime.stop_on_signals()
    runner = await start(settings)
    log.info("stub.started", host=settings.stub_host, port=settings.stub_port)
    await stop.wait()
    await runner.cleanup()
    log.info("stub.stopped")
