"""What the demo shows: a progress bar while the mailing runs, then its figures."""

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from services.stack.errors import DemoFailed
from shared.statuses import MailingStatus, MessageStatus

POLL_INTERVAL_S = 0.25
UNFINISHED = (MessageStatus.PENDING.value, MessageStatus.QUEUED.value)
DONE = (MailingStatus.FINISHED.value, MailingStatus.CANCELLED.value)
TERMINAL_FDS = (0, 1, 2)
"""stdin, stdout and stderr: where rich looks for the terminal's size."""
PIPED_COLUMNS = 160
"""The demo's width with no terminal at all: rich would take 80, which cuts the progress line."""


@dataclass(frozen=True)
class DemoResult:
    """What one demo run did and how long each part took."""

    mailing: dict[str, Any]
    seeded: int
    seed_s: float
    delivery_s: float
    stub_summary: dict[str, Any] | None


async def follow_mailing(
    api: httpx.AsyncClient, mailing_id: int, expected: int, deadline_s: float, console: Console
) -> dict[str, Any]:
    """Poll the mailing, drawing its progress, until it is finished; the last answer.

    :class:`DemoFailed` if it is still running ``deadline_s`` from now.
    """
    started = time.monotonic()
    with _progress(console) as progress:
        bar = progress.add_task("scheduled", total=expected, sent=0, failed=0, expired=0, rate=0.0)
        while True:
            mailing = await _get_mailing(api, mailing_id)
            stats = mailing["stats"]
            by_status: dict[str, int] = stats["by_status"]
            done = stats["total"] - sum(by_status[status] for status in UNFINISHED)
            elapsed_s = max(time.monotonic() - started, 1e-3)
            progress.update(
                bar,
                description=mailing["status"],
                total=max(stats["total"], expected),
                completed=done,
                rate=done / elapsed_s,
                sent=by_status["sent"],
                failed=by_status["failed"],
                expired=by_status["expired"],
            )
            if mailing["status"] in DONE:
                return mailing
            if elapsed_s > deadline_s:
                raise DemoFailed(
                    f"mailing {mailing_id} still {mailing['status']} after {elapsed_s:.0f} s"
                )
            await asyncio.sleep(POLL_INTERVAL_S)


def demo_console() -> Console:
    """Rich's console, but PIPED_COLUMNS wide where neither ``COLUMNS`` nor a terminal tells
    the width (a CI log, ``make run > file``).

    Rich reads the terminal's size from stdin, stdout or stderr, so ``make run | tee`` keeps
    the terminal's width.
    """
    if "COLUMNS" in os.environ or any(_is_terminal(fd) for fd in TERMINAL_FDS):
        return Console()
    return Console(width=PIPED_COLUMNS)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("sent {task.fields[sent]:,}  failed {task.fields[failed]:,}"),
        TextColumn("expired {task.fields[expired]:,}  {task.fields[rate]:,.0f} msg/s"),
        TimeElapsedColumn(),
        console=console,
    )


async def _get_mailing(api: httpx.AsyncClient, mailing_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/v1/mailings/{mailing_id}")
    if response.status_code != httpx.codes.OK:
        raise DemoFailed(
            f"GET mailing {mailing_id} answered {response.status_code}: {response.text[:200]}"
        )
    mailing: dict[str, Any] = response.json()
    return mailing


def print_report(result: DemoResult, console: Console) -> list[str]:
    """Print the mailing's statistics, the stub's summary and the timings; the problems seen."""
    mailing = result.mailing
    stats = mailing["stats"]
    table = Table(title=f"mailing {mailing['id']}: {mailing['status']}", title_justify="left")
    table.add_column("status")
    table.add_column("messages", justify="right")
    for status, count in stats["by_status"].items():
        table.add_row(status, f"{count:,}")
    table.add_row("[bold]total", f"[bold]{stats['total']:,}")
    console.print(table)
    if result.stub_summary is not None:
        console.print(_stub_table(result.stub_summary))
    rate = stats["total"] / result.delivery_s if result.delivery_s else 0.0
    console.print(
        f"seeded {result.seeded:,} clients by COPY in {result.seed_s:.2f} s; "
        f"mailing created → finished in [bold]{result.delivery_s:.1f} s[/bold] "
        f"= [bold]{rate:,.0f} messages/s[/bold] (wall time, {_span(mailing)})"
    )
    problems = check(result)
    for problem in problems:
        console.print(f"[bold red]inconsistent:[/bold red] {problem}")
    return problems


def _stub_table(summary: dict[str, Any]) -> Table:
    table = Table(title="provider stub", title_justify="left")
    table.add_column("requests", justify="right")
    table.add_column("unique msgIds", justify="right")
    table.add_column("successes", justify="right")
    table.add_column("duplicate successes", justify="right")
    table.add_row(
        *(f"{summary[key]:,}" for key in ("requests", "unique_msg_ids", "successes")),
        f"{summary['duplicate_successes']:,}",
    )
    return table


def _span(mailing: dict[str, Any]) -> str:
    created = datetime.fromisoformat(mailing["created_at"])
    updated = datetime.fromisoformat(mailing["updated_at"])
    return f"server side {(updated - created).total_seconds():.1f} s"


def check(result: DemoResult) -> list[str]:
    """Where the figures disagree with each other (SPEC §5.6), in words."""
    stats = result.mailing["stats"]
    problems = []
    if result.mailing["status"] != MailingStatus.FINISHED.value:
        problems.append(f"the mailing ended {result.mailing['status']}, not finished")
    if stats["total"] != result.seeded:
        problems.append(f"{stats['total']:,} messages for {result.seeded:,} seeded clients")
    summary = result.stub_summary
    if summary is not None:
        sent = stats["by_status"]["sent"]
        if summary["successes"] != sent:
            problems.append(f"{sent:,} sent but {summary['successes']:,} successes at the stub")
        if summary["duplicate_successes"]:
            problems.append(f"{summary['duplicate_successes']:,} duplicate successes at the stub")
    return problems
