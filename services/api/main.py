"""Entry point of the API service (``mailer api``)."""

import uvicorn

from services.api.app import create_app
from shared.logs import configure_logging, get_logger
from shared.settings import (
    ApiSettings,
    BrokerSettings,
    DatabaseSettings,
    LogSettings,
    load_settings,
    secret_values,
)


def run() -> None:
    """Load the settings, set up logging and serve until stopped."""
    api = load_settings(ApiSettings)
    database = load_settings(DatabaseSettings)
    broker = load_settings(BrokerSettings)
    logs = load_settings(LogSettings)
    configure_logging(
        level=logs.log_level,
        log_format=logs.log_format,
        secrets=secret_values(api, database, broker),
    )
    get_logger(__name__).info("api.starting", host=api.api_host, port=api.api_port)
    uvicorn.run(
        create_app(api, database, broker),
        host=api.api_host,
        port=api.api_port,
        loop="uvloop",  # as every service (shared.runtime), said rather than left to "auto"
        access_log=False,  # our middleware writes one structured line per request
        log_config=None,  # keep the logging set up above
    )
