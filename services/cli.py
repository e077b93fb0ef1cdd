"""The ``mailer`` command: one sub-command per service, plus operations."""

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import asyncpg
import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from shared.errors import SettingsError
from shared.logs import configure_logging, get_logger
from shared.settings import DatabaseSettings, LogSettings, load_settings, secret_values

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The SMS mailing service.")


def _fail(message: str, exit_code: int = 2) -> NoReturn:
    typer.echo(f"mailer: {message}", err=True)
    sys.exit(exit_code)


@app.command()
def migrate() -> None:
    """Create the database if it is missing and apply the migrations (safe on every start)."""
    from shared.migrate import ensure_database, upgrade

    try:
        database = load_settings(DatabaseSettings)
        logs = load_settings(LogSettings)
    except SettingsError as exc:
        _fail(f"configuration error: {exc}")
    configure_logging(
        level=logs.log_level, log_format=logs.log_format, secrets=secret_values(database)
    )
    log = get_logger(__name__)
    name = make_url(database.database_url).database
    try:
        if asyncio.run(ensure_database(database.database_url)):
            log.info("migrate.database_created", database=name)
        upgrade(database.database_url)
    except (OSError, SQLAlchemyError, asyncpg.PostgresError) as exc:
        # An unreachable server or a refused login is an operator's fix, not a crash: one line
        # that says what failed (no URL: it may hold a password).
        _fail(f"cannot migrate database {name!r}: {type(exc).__name__}: {exc}", exit_code=1)
    log.info("migrate.done", database=name)


def _serve(module: str) -> None:
    """Run ``services.<module>.main.run``, turning a configuration error into one line."""
    run = importlib.import_module(f"services.{module}.main").run
    try:
        run()
    except SettingsError as exc:
        _fail(f"configuration error: {exc}")


@app.command()
def api() -> None:
    """Serve the REST API (MAILER_API_HOST:MAILER_API_PORT)."""
    _serve("api")


@app.command()
def planner() -> None:
    """Start due mailings, materialise their audience, dispatch work, expire and finish."""
    _serve("planner")


@app.command()
def sender() -> None:
    """Consume work and call the provider (run as many as the provider allows)."""
    _serve("sender")


@app.command()
def status() -> None:
    """Consume results and write Message records in batches."""
    _serve("status")


@app.command()
def stub() -> None:
    """Serve the provider stub (MAILER_STUB_HOST:MAILER_STUB_PORT) for demos, tests, benchmarks."""
    _serve("provider_stub")


Senders = Annotated[int, typer.Option(min=1, max=64, help="Sender processes to run.")]
ApiPort = Annotated[int | None, typer.Option(min=1, max=65535, help="Default: MAILER_API_PORT.")]
StubPort = Annotated[int | None, typer.Option(min=1, max=65535, help="Default: MAILER_STUB_PORT.")]


@app.command()
def up(
    senders: Senders = 2,
    stub: Annotated[
        bool, typer.Option("--stub/--no-stub", help="Run the provider stub and send to it.")
    ] = True,
    api_port: ApiPort = None,
    stub_port: StubPort = None,
) -> None:
    """Run the whole stack as local processes, without Docker, until Ctrl-C.

    Migrates, then runs api, planner, the senders, status and the stub with prefixed output.
    """
    from services.stack import up as stack_up

    options = stack_up.StackOptions(senders, stub, api_port=api_port, stub_port=stub_port)
    try:
        exit_code = stack_up.run(options)
    except SettingsError as exc:
        _fail(f"configuration error: {exc}")
    sys.exit(exit_code)


@app.command()
def demo(
    clients: Annotated[int, typer.Option(min=1, max=5_000_000, help="Clients to seed.")] = 10_000,
    senders: Senders = 2,
    latency_ms: Annotated[int, typer.Option(min=0, help="The stub's answer delay.")] = 0,
    error_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of 503 answers from the stub.")
    ] = 0.0,
    minutes: Annotated[float, typer.Option(min=0.1, help="The mailing's end_at, from now.")] = 10.0,
    api_url: Annotated[str | None, typer.Option(help="A running stack's API to use.")] = None,
    stub_url: Annotated[
        str | None, typer.Option(help="That stack's stub; default: MAILER_STUB_PORT, if up.")
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option(help="For the services' output; default: a temp file.")
    ] = None,
) -> None:
    """Seed realistic clients, send them a mailing, show its progress and its statistics."""
    from services.stack import demo as stack_demo

    options = stack_demo.DemoOptions(
        clients, senders, latency_ms, error_rate, minutes, api_url, stub_url, log_file
    )
    try:
        exit_code = stack_demo.run(options)
    except SettingsError as exc:
        _fail(f"configuration error: {exc}")
    sys.exit(exit_code)


if __name__ == "__main__":  # `python -m services.cli`, as `mailer up` starts the services
    app()
