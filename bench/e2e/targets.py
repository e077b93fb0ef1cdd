"""Issue 7's targets, judged against one scenario's figures."""

from dataclasses import dataclass
from typing import Any

from bench.e2e.follow import MAILING_ROUTE, STATS_ROUTE

MIN_RATE = {"S1": 1_000.0, "S2": 800.0}
MATERIALISE_MAX_S = 30.0
RSS_MAX_MB = 300.0
RSS_GROWTH_MAX = 1.25
"""S3's peak over S1's, per service, that still counts as not growing with the audience."""
LATENCY_P95_MAX_MS = 50.0
REQUESTS_PER_MESSAGE_MAX = 1.5
MIB_IN_MB = 1.048576
NOT_SERVICES = frozenset({"bench", "postgres", "rabbitmq", "machine"})


@dataclass(frozen=True)
class Verdict:
    """One target: the figure, what was measured, the target, and whether it was met."""

    figure: str
    measured: str
    target: str
    met: bool | None
    """None when it could not be judged (a figure is missing)."""

    @property
    def mark(self) -> str:
        return {True: "met", False: "**missed**", None: "n/a"}[self.met]


def services(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in result["processes"].items() if k not in NOT_SERVICES}


def verdicts(result: dict[str, Any], s1: dict[str, Any] | None = None) -> list[Verdict]:
    """The targets that apply to ``result``'s scenario; ``s1`` (the same run's S1, if any)
    is the reference for S3's memory growth."""
    name = result["scenario"]
    checks = result["checks"]
    found = [
        Verdict(
            "mailing finished, every message final",
            f"{result['mailing']['status']}, {result['mailing']['total']:,} messages",
            "finished, 0 pending or queued",
            checks["finished"] and checks["all_final"],
        )
    ]
    if name in MIN_RATE:
        rate = result["throughput"]["messages_per_s"]
        found.append(_at_least("end-to-end messages/s", rate, MIN_RATE[name], "{:,.0f}"))
    if name == "S3":
        found += _s3(result, s1)
    if name == "S4":
        found += _s4(result)
    for route in (MAILING_ROUTE, STATS_ROUTE):
        found.append(_latency(result, route))
    return found


def _s3(result: dict[str, Any], s1: dict[str, Any] | None) -> list[Verdict]:
    seconds = result["materialisation"]["started_to_materialised_s"]
    found = [_at_most("planner materialisation, s", seconds, MATERIALISE_MAX_S, "{:.1f}")]
    peaks = {name: f.get("rss_peak_mib", 0.0) * MIB_IN_MB for name, f in services(result).items()}
    top = max(peaks, key=peaks.__getitem__)
    found.append(
        Verdict(
            "peak RSS of every service, MB",
            f"highest: {top} {peaks[top]:,.0f}",
            f"< {RSS_MAX_MB:.0f}",
            peaks[top] < RSS_MAX_MB,
        )
    )
    found.append(_growth(result, s1))
    return found


def _growth(result: dict[str, Any], s1: dict[str, Any] | None) -> Verdict:
    figure, target = "peak RSS, S3 over S1 (same run)", f"≤ {RSS_GROWTH_MAX:.2f}x"
    if s1 is None:
        return Verdict(figure, "S1 not in this run", target, None)
    reference = services(s1)
    ratios = {
        name: f["rss_peak_mib"] / reference[name]["rss_peak_mib"]
        for name, f in services(result).items()
        if name in reference and reference[name].get("rss_peak_mib")
    }
    if not ratios:
        return Verdict(figure, "no peak RSS in S1", target, None)
    top = max(ratios, key=ratios.__getitem__)
    met = ratios[top] <= RSS_GROWTH_MAX
    return Verdict(figure, f"highest: {top} {ratios[top]:.2f}x", target, met)


def _s4(result: dict[str, Any]) -> list[Verdict]:
    ratio = result["stub"]["requests_per_message"]
    return [
        Verdict(
            "finished before the deadline",
            "yes" if result["checks"]["finished_before_deadline"] else "no",
            "yes",
            result["checks"]["finished_before_deadline"],
        ),
        _at_most("provider requests per message", ratio, REQUESTS_PER_MESSAGE_MAX, "{:.3f}"),
    ]


def _latency(result: dict[str, Any], route: str) -> Verdict:
    phases = result["latency_ms"]
    p95s = [phases[phase][route]["p95"] for phase in ("during", "after") if route in phases[phase]]
    measured = " / ".join(f"{p:.1f}" for p in p95s) if p95s else "not measured"
    return Verdict(
        f"`{route}` p95 during / after, ms",
        measured,
        f"≤ {LATENCY_P95_MAX_MS:.0f}",
        max(p95s) <= LATENCY_P95_MAX_MS if p95s else None,
    )


def _at_least(figure: str, value: float | None, floor: float, shape: str) -> Verdict:
    if value is None:
        return Verdict(figure, "not measured", f"≥ {shape.format(floor)}", None)
    return Verdict(figure, shape.format(value), f"≥ {shape.format(floor)}", value >= floor)


def _at_most(figure: str, value: float | None, ceiling: float, shape: str) -> Verdict:
    if value is None:
        return Verdict(figure, "not measured", f"≤ {shape.format(ceiling)}", None)
    return Verdict(figure, shape.format(value), f"≤ {shape.format(ceiling)}", value <= ceiling)
