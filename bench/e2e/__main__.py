"""``make bench``: the end-to-end benchmark of issue 7 (see BENCHMARKS.md).

Usage::

    .venv/bin/python -m bench.e2e                              # S1-S4 and the raw ceiling
    .venv/bin/python -m bench.e2e --scenario S1 --scenario S3
    .venv/bin/python -m bench.e2e --scenario S1 --clients 20000 --ceiling-messages 20000

Needs PostgreSQL (``--admin-url``) and RabbitMQ with ``rabbitmqctl`` (``--amqp-url``); each
scenario gets a database and a vhost of its own, dropped afterwards. Writes
``bench/results/e2e-<timestamp>.json`` and ``e2e-latest.md``, and the blocks of the
scenarios run at their own size in BENCHMARKS.md.
"""

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from bench.e2e import ceiling, console_report, markdown, procstat
from bench.e2e.run import RunOptions, quiet_machine, run_scenario
from bench.e2e.scenarios import SCENARIOS
from bench.vhosts import rabbitmqctl
from services.stack.errors import StackError, StopRequested

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "bench" / "results"
BENCHMARKS = REPO / "BENCHMARKS.md"
console = Console(width=120)


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown"
    done = subprocess.run([git, *args], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout


async def _describe_machine(admin_url: str) -> dict[str, Any]:
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        postgres = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    machine = procstat.machine()
    return {
        "cpu_model": machine.cpu_model,
        "cpus": machine.cpus,
        "memory_gib": round(machine.memory_gib, 1),
        "description": machine.describe(),
        "python": sys.version.split()[0],
        "postgres": postgres,
        "rabbitmq": rabbitmqctl("version").strip(),
        "aio_pika": version("aio-pika"),
    }


async def _run(
    names: list[str],
    clients: int | None,
    ceiling_messages: int,
    options: RunOptions,
    settings: Mapping[str, str],
) -> dict[str, Any]:
    run: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD").strip(),
        # The services run from the working tree: say so when it is not the commit.
        "dirty": [
            line[3:]
            for line in _git("status", "--porcelain", "--", "services", "shared").splitlines()
        ],
        "machine": await _describe_machine(options.admin_url),
        "ceiling": None,
        "scenarios": [],
        "failed": {},
    }
    if ceiling_messages:
        console.print(
            f"[bold]raw ceiling[/bold]: {ceiling_messages:,} work messages through plain aio-pika"
        )
        busy = await quiet_machine(options.wait_quiet_s, console)
        run["ceiling"] = await ceiling.measure(options.amqp_url, ceiling_messages)
        run["ceiling"]["background_busy"] = busy
        rates = run["ceiling"]
        console.print(
            f"  publish {rates['publish_per_s']:,}/s, consume {rates['consume_per_s']:,}/s"
        )
    for name in names:
        scenario = SCENARIOS[name].with_clients(clients).with_settings(settings)
        try:
            result = await run_scenario(scenario, options, console)
        except StopRequested:
            console.print(f"[bold red]{name} stopped by a signal[/bold red]; no further scenario")
            run["failed"][name] = "stopped by a signal"
            break
        except (StackError, RuntimeError, OSError) as exc:
            console.print(f"[bold red]{name} failed:[/bold red] {type(exc).__name__}: {exc}")
            run["failed"][name] = f"{type(exc).__name__}: {exc}"
            continue
        result["ceiling_ratio"] = _ceiling_ratio(result, run["ceiling"])
        run["scenarios"].append(result)
    run["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return run


def _ceiling_ratio(
    result: dict[str, Any], measured: dict[str, Any] | None
) -> dict[str, float] | None:
    rate = result["throughput"]["messages_per_s"]
    if measured is None or not rate:
        return None
    publish, consume = measured["publish_per_s"], measured["consume_per_s"]
    return {
        "of_lower": round(rate / min(publish, consume), 3),
        "of_publish": round(rate / publish, 3),
        "of_consume": round(rate / consume, 3),
    }


def _setting(pair: str) -> tuple[str, str]:
    name, equals, value = pair.partition("=")
    if not name.startswith("MAILER_") or not equals:
        raise typer.BadParameter(f"--set takes MAILER_NAME=value, not {pair!r}")
    return name, value


def main(
    scenario: Annotated[
        list[str] | None, typer.Option(help="S1, S2, S3 or S4; repeat for several (default: all).")
    ] = None,
    clients: Annotated[
        int | None,
        typer.Option(min=1, help="Audience of every scenario run, instead of its own size."),
    ] = None,
    ceiling_messages: Annotated[
        int, typer.Option(min=0, help="Work messages for the raw ceiling; 0 skips it.")
    ] = 100_000,
    after_requests: Annotated[
        int, typer.Option(min=1, help="Timed requests per statistics route after a run.")
    ] = 200,
    wait_quiet_s: Annotated[
        float,
        typer.Option(min=0, help="Before each mailing, wait up to this long for a quiet machine."),
    ] = 300.0,
    profile: Annotated[
        bool,
        typer.Option(help="Sample every service with py-spy; top costs in the results (slower)."),
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="MAILER_NAME=value for every service, to try a setting; repeat for several.",
        ),
    ] = None,
    results_dir: Annotated[
        Path, typer.Option(help="Where the JSON, markdown and service logs go.")
    ] = RESULTS_DIR,
    update_benchmarks: Annotated[
        bool,
        typer.Option(help="Rewrite BENCHMARKS.md's blocks of the scenarios run at their own size."),
    ] = True,
    admin_url: Annotated[
        str, typer.Option(help="PostgreSQL server to create the databases on.")
    ] = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
    amqp_url: Annotated[
        str, typer.Option(help="RabbitMQ server (vhosts are created on it).")
    ] = "amqp://guest:guest@127.0.0.1:5672/",
) -> None:
    """Run the end-to-end scenarios and the raw ceiling; print, save and publish the figures."""
    names = [name.upper() for name in scenario or SCENARIOS]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(
            f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    settings = dict(_setting(pair) for pair in set_ or [])
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    options = RunOptions(
        admin_url, amqp_url, results_dir, stamp, after_requests, wait_quiet_s, profile
    )
    run = asyncio.run(_run(names, clients, ceiling_messages, options, settings))
    console_report.print_run(run, console)
    path = results_dir / f"e2e-{stamp}.json"
    path.write_text(json.dumps(run, indent=2, default=str) + "\n")
    (results_dir / "e2e-latest.md").write_text(markdown.run_markdown(run))
    console.print(f"wrote {path} and {results_dir / 'e2e-latest.md'}")
    if update_benchmarks:
        written = markdown.update_benchmarks(BENCHMARKS, run)
        if written:
            console.print(f"rewrote the blocks of {', '.join(written)} in {BENCHMARKS.name}")
    if run["failed"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
