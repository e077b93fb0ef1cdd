"""A run as markdown: ``bench/results/e2e-latest.md`` and the results section of BENCHMARKS.md.

BENCHMARKS.md keeps one block per scenario between ``<!-- e2e:S1:start -->`` and
``<!-- e2e:S1:end -->`` markers; a run replaces the blocks of the scenarios it ran (each block
says its date and commit) and leaves the others, so ``--scenario S3`` alone does not erase
S1's figures. The machine block is replaced by every run that writes a scenario.
"""

import re
from pathlib import Path
from typing import Any

from bench.e2e.follow import MAILING_ROUTE, STATS_ROUTE
from bench.e2e.profile import RATE_HZ
from bench.e2e.targets import Verdict, verdicts

RESULTS_START = "<!-- e2e:results:start -->"
RESULTS_END = "<!-- e2e:results:end -->"
_BLOCK = re.compile(r"<!-- e2e:(\w+):start -->\n(.*?)<!-- e2e:\1:end -->\n", re.DOTALL)


def _n(value: float | None, shape: str = "{:,.0f}") -> str:
    return "-" if value is None else shape.format(value)


def machine_block(run: dict[str, Any]) -> str:
    m = run["machine"]
    ceiling = run.get("ceiling")
    lines = [
        f"Machine of the last run ({run['started_at'][:10]}): {m['description']}; "
        f"Python {m['python']}, PostgreSQL {m['postgres']}, RabbitMQ {m['rabbitmq']}, "
        f"aio-pika {m['aio_pika']}; everything on the one machine.",
    ]
    if ceiling:
        lines.append(
            f"Raw ceiling on it ({ceiling['messages']:,} work messages of"
            f" {ceiling['body_bytes']} bytes, plain aio-pika): publish with confirms"
            f" {ceiling['publish_per_s']:,}/s ({ceiling['publish_concurrency']} in flight),"
            f" consume with manual acks {ceiling['consume_per_s']:,}/s"
            f" (prefetch {ceiling['consumer_prefetch']}); machine"
            f" {ceiling['background_busy']:.0%} busy just before."
        )
    return "\n\n".join(lines) + "\n"


def scenario_block(run: dict[str, Any], result: dict[str, Any], s1: dict[str, Any] | None) -> str:
    size = " (overridden with --clients or --set)" if result["overridden"] else ""
    parts = [
        f"### {result['scenario']} — {result['title']}{size}\n",
        f"Run {run['started_at'][:16].replace('T', ' ')} UTC on commit `{run['commit']}`"
        f"{_dirty(run)}.\n",
        _targets_table(verdicts(result, s1)),
        _figures_table(result),
        _processes_table(result),
        _latency_table(result),
        _profile_table(result),
    ]
    return "\n".join(parts)


def _dirty(run: dict[str, Any]) -> str:
    if not run["dirty"]:
        return ""
    return " with uncommitted changes in " + ", ".join(f"`{path}`" for path in run["dirty"])


def _targets_table(found: list[Verdict]) -> str:
    rows = ["| target | measured | issue 7 | |", "|---|---|---|---|"]
    rows += [f"| {v.figure} | {v.measured} | {v.target} | {v.mark} |" for v in found]
    return "\n".join(rows) + "\n"


def _figures_table(result: dict[str, Any]) -> str:
    t, m, stub, checks = (
        result["throughput"],
        result["materialisation"],
        result["stub"],
        result["checks"],
    )
    ratio = result.get("ceiling_ratio") or {}
    d = result["dispatch"]
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| end-to-end messages/s, created → finished | {_n(t['messages_per_s'])}"
        f" ({_n(t['created_to_finished_s'], '{:.1f}')} s) |",
        f"| messages/s, first → last provider request | {_n(t['stub_messages_per_s'])}"
        f" ({_n(t['first_to_last_request_s'], '{:.1f}')} s) |",
        f"| steady messages/s, 10 → 90 % final | {_n(t['steady_messages_per_s'])} |",
        "| end-to-end / raw ceiling (lower; publish; consume) |"
        f" {_n(ratio.get('of_lower'), '{:.3f}')}; {_n(ratio.get('of_publish'), '{:.3f}')};"
        f" {_n(ratio.get('of_consume'), '{:.3f}')} |",
        f"| time to first provider request, s | {_n(result['first_request_s'], '{:.2f}')} |",
        "| materialisation, mailing started → audience materialised, s |"
        f" {_n(m['started_to_materialised_s'], '{:.2f}')} (first to last chunk"
        f" {_n(m['planner_logged_s'], '{:.2f}')}; created → materialized_at"
        f" {_n(m['created_to_materialized_at_s'], '{:.2f}')}) |",
        f"| planner dispatch: batches, messages/s inside them, first batch s |"
        f" {d['batches']:,}; {_n(d['messages_per_busy_s'])}; {_n(d['first_batch_s'], '{:.2f}')} |",
        f"| ready in the queues, mean / max: work; results; retry | {_depths(result)} |",
        f"| provider requests / minimum | {stub['requests']:,} / {result['mailing']['total']:,}"
        f" = {_n(stub['requests_per_message'], '{:.3f}')} |",
        f"| sent / failed / expired / cancelled | {checks['sent']:,} / {checks['failed']:,} /"
        f" {checks['expired']:,} / {checks['cancelled']:,} |",
        f"| machine busy just before the mailing (stack idle) | {result['background_busy']:.0%} |",
        f"| stub successes = sent; duplicate successes |"
        f" {'yes' if checks['sent_equals_stub_successes'] else '**no**'};"
        f" {checks['duplicate_successes']:,} |",
    ]
    return "\n".join(rows) + "\n"


def _depths(result: dict[str, Any]) -> str:
    found = result.get("queues") or {}
    stages = [found[stage] for stage in ("work", "results", "retry") if stage in found]
    return "; ".join(f"{s['mean']:,} / {s['max']:,}" for s in stages) or "-"


def _processes_table(result: dict[str, Any]) -> str:
    lines = result.get("log", {}).get("lines", {})
    rows = [
        "| process | CPU-s | CPU-s / 1,000 messages | RSS start → end, MiB | peak RSS, MiB"
        " | log lines |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in result["processes"].items():
        if name == "machine":
            continue
        rss = f"{_n(f.get('rss_start_mib'), '{:.0f}')} → {_n(f.get('rss_end_mib'), '{:.0f}')}"
        if "rss_start_mib" not in f:
            rss = "-"
        rows.append(
            f"| {name} | {f['cpu_s']:.1f} | {f['cpu_s_per_1000_messages']:.3f} | {rss}"
            f" | {_n(f.get('rss_peak_mib'), '{:.0f}')} | {_n(lines.get(name))} |"
        )
    machine = result["processes"]["machine"]
    rows.append(
        f"| whole machine (busy {machine['utilisation']:.0%}; unaccounted"
        f" {machine['unaccounted_cpu_s']:.1f} s) | {machine['cpu_s']:.1f}"
        f" | {machine['cpu_s_per_1000_messages']:.3f} | | | |"
    )
    return "\n".join(rows) + "\n"


def _latency_table(result: dict[str, Any]) -> str:
    rows = [
        "| route | during: p50 / p95 / p99 ms (n) | after: p50 / p95 / p99 ms (n) |",
        "|---|---|---|",
    ]
    for route in (MAILING_ROUTE, STATS_ROUTE):
        cells = []
        for phase in ("during", "after"):
            f = result["latency_ms"][phase].get(route)
            cells.append(
                f"{f['p50']:.1f} / {f['p95']:.1f} / {f['p99']:.1f} ({f['n']})" if f else "-"
            )
        rows.append(f"| `{route}` | {cells[0]} | {cells[1]} |")
    return "\n".join(rows) + "\n"


def _profile_table(result: dict[str, Any]) -> str:
    profile = result.get("profile")
    if not profile:
        return ""
    rows = [
        f"Profile (py-spy at {RATE_HZ} Hz, self time, share of busy samples; the samplers"
        " slowed this run):\n",
        "| process | samples | where the time goes |",
        "|---|---:|---|",
    ]
    for name, summary in profile.items():
        shares = ", ".join(f"{package} {share:.0%}" for package, share in summary["by_package"])
        rows.append(f"| {name} | {summary['samples']:,} | {shares} |")
    return "\n".join(rows) + "\n"


def reference_s1(run: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in run["scenarios"] if r["scenario"] == "S1"), None)


def run_markdown(run: dict[str, Any]) -> str:
    """The whole run, for ``bench/results/e2e-latest.md``."""
    s1 = reference_s1(run)
    blocks = [scenario_block(run, result, s1) for result in run["scenarios"]]
    return "# End-to-end benchmark\n\n" + machine_block(run) + "\n" + "\n".join(blocks)


def update_benchmarks(path: Path, run: dict[str, Any]) -> list[str]:
    """Rewrite the blocks of ``run``'s scenarios run at their own size and not profiled (the
    samplers slow the services); the names written."""
    full = [r for r in run["scenarios"] if not r["overridden"] and not r.get("profile")]
    if not full:
        return []
    text = path.read_text()
    head, start, rest = text.partition(RESULTS_START)
    section, end, tail = rest.partition(RESULTS_END)
    if not start or not end:
        raise RuntimeError(f"{path} lacks the {RESULTS_START} … {RESULTS_END} markers")
    blocks = dict(_BLOCK.findall(section))
    blocks["machine"] = machine_block(run)
    s1 = reference_s1(run)
    for result in full:
        blocks[result["scenario"]] = scenario_block(run, result, s1)
    order = ["machine", *sorted(name for name in blocks if name != "machine")]
    body = "".join(f"<!-- e2e:{n}:start -->\n{blocks[n]}<!-- e2e:{n}:end -->\n\n" for n in order)
    path.write_text(f"{head}{start}\n{body}{end}{tail}")
    return [r["scenario"] for r in full]
