"""The ``mailer`` command: one sub-command per service, plus operations."""

import asyncio
import sys

import typer

from shared.errors import SettingsError
from shared.logs import configure_logging, get_logger
from shared.settings import DatabaseSettings, LogSettings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The SMS mailing service.")


def _fail(exc: SettingsError) -> None:
    typer.echo(f"mailer: configuration error: {exc}", err=True)
    sys.exit(2)


@app.command()
def migrate() -> None:
    """Apply the database migrations (safe to run on every start)."""
    from shared.migrate import ensure_database, upgrade

    try:
        database = load_settings(DatabaseSettings)
        logs = load_settings(LogSettings)
    except SettingsError as exc:
        _fail(exc)
        return
    configure_logging(level=logs.log_level, log_format=logs.log_format)
    log = get_logger(__name__)
    if asyncio.run(ensure_database(database.database_url)):
        log.info("migrate.database_created")
    upgrade(database.database_url)
    log.info("migrate.done")


@app.command()
def api() -> None:
    """Serve the REST API (MAILER_API_HOST:MAILER_API_PORT)."""
    from services.api.main import run

    try:
        run()
    except SettingsError as exc:
        _fail(exc)
