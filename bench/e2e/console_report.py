"""The run on the terminal: one table of the headline figures, then each scenario's detail."""

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.e2e.follow import MAILING_ROUTE, STATS_ROUTE
from bench.e2e.markdown import reference_s1
from bench.e2e.targets import verdicts

_MARKS = {True: "[green]met[/green]", False: "[bold red]missed[/bold red]", None: "n/a"}


def _n(value: float | None, shape: str = "{:,.0f}") -> str:
    return "-" if value is None else shape.format(value)


def print_run(run: dict[str, Any], console: Console) -> None:
    console.print(f"{run['machine']['description']}; commit {run['commit']}")
    console.print(_headline(run))
    s1 = reference_s1(run)
    for result in run["scenarios"]:
        console.print(_processes(result))
        console.print(_targets(result, s1))
    for name, error in run["failed"].items():
        console.print(f"[bold red]{name} failed[/bold red]: {error}")


def _headline(run: dict[str, Any]) -> Table:
    table = Table(title="end to end", title_justify="left")
    for column in (
        "", "messages", "msg/s", "stub msg/s", "steady", "/ceiling", "1st req s",
        "audience s", "req/msg", "mailing p95 ms", "stats p95 ms",
    ):  # fmt: skip
        table.add_column(column, justify="left" if not column else "right")
    for result in run["scenarios"]:
        t, latency = result["throughput"], result["latency_ms"]["during"]
        ratio = (result.get("ceiling_ratio") or {}).get("of_lower")
        table.add_row(
            result["scenario"],
            f"{result['mailing']['total']:,}",
            _n(t["messages_per_s"]),
            _n(t["stub_messages_per_s"]),
            _n(t["steady_messages_per_s"]),
            _n(ratio, "{:.3f}"),
            _n(result["first_request_s"], "{:.2f}"),
            _n(result["materialisation"]["started_to_materialised_s"], "{:.2f}"),
            _n(result["stub"]["requests_per_message"], "{:.3f}"),
            _n(latency.get(MAILING_ROUTE, {}).get("p95"), "{:.1f}"),
            _n(latency.get(STATS_ROUTE, {}).get("p95"), "{:.1f}"),
        )
    ceiling = run.get("ceiling")
    if ceiling:
        table.caption = (
            f"raw ceiling: publish {ceiling['publish_per_s']:,}/s,"
            f" consume {ceiling['consume_per_s']:,}/s ({ceiling['body_bytes']}-byte bodies)"
        )
    return table


def _processes(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['scenario']}: processes over the mailing", title_justify="left")
    for column in ("process", "CPU-s", "CPU-s/1000 msg", "RSS start", "RSS peak", "RSS end"):
        table.add_column(column, justify="left" if column == "process" else "right")
    for name, f in result["processes"].items():
        if name == "machine":
            continue
        table.add_row(
            name,
            f"{f['cpu_s']:.1f}",
            f"{f['cpu_s_per_1000_messages']:.3f}",
            _n(f.get("rss_start_mib"), "{:.0f} MiB"),
            _n(f.get("rss_peak_mib"), "{:.0f} MiB"),
            _n(f.get("rss_end_mib"), "{:.0f} MiB"),
        )
    machine = result["processes"]["machine"]
    table.caption = (
        f"machine: {machine['cpu_s']:.1f} CPU-s, busy {machine['utilisation']:.0%},"
        f" unaccounted {machine['unaccounted_cpu_s']:.1f} CPU-s;"
        f" busy {result['background_busy']:.0%} just before the mailing"
    )
    return table


def _targets(result: dict[str, Any], s1: dict[str, Any] | None) -> Table:
    table = Table(title=f"{result['scenario']}: issue 7's targets", title_justify="left")
    for column in ("target", "measured", "issue 7", ""):
        table.add_column(column)
    for verdict in verdicts(result, s1):
        table.add_row(verdict.figure, verdict.measured, verdict.target, _MARKS[verdict.met])
    return table
