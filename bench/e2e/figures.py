"""From what a run observed to the figures it reports (the JSON's shape, documented in
BENCHMARKS.md). Pure functions: no I/O, so the arithmetic is easy to check."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.e2e.follow import Followed
from bench.e2e.scenarios import Scenario
from bench.stats_latency import summarize
from shared.statuses import MessageStatus

PROGRESS_STEP_S = 1.0
"""The progress series in the JSON keeps one sample per this many seconds."""


@dataclass(frozen=True)
class Timeline:
    """When the stub received its first and its last request (epoch seconds)."""

    first_request_at: float | None
    last_request_at: float | None


def scenario_figures(
    scenario: Scenario,
    *,
    seeded: dict[str, Any],
    followed: Followed,
    row: dict[str, Any],
    timeline: Timeline,
    summary: dict[str, Any],
    processes: dict[str, dict[str, Any]],
    latency_after_s: dict[str, list[float]],
    planner_events: list[dict[str, Any]],
) -> dict[str, Any]:
    mailing = followed.mailing
    total = mailing["stats"]["total"]
    created_at: datetime = row["created_at"]
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "clients": scenario.clients,
        "overridden": scenario.overridden,
        "senders": scenario.senders,
        "behaviour": dict(scenario.behaviour),
        "settings": dict(scenario.settings),
        "seed": seeded,
        "mailing": {"id": mailing["id"], "status": mailing["status"], **mailing["stats"]},
        "throughput": _throughput(total, row, timeline, followed.progress),
        "first_request_s": _since(created_at, timeline.first_request_at),
        "materialisation": _materialisation(mailing["id"], row, planner_events),
        "dispatch": _dispatch(mailing["id"], planner_events),
        "stub": summary | {"requests_per_message": _ratio(summary["requests"], total)},
        "processes": processes,
        "latency_ms": {
            "during": {route: summarize(s) for route, s in followed.latency_s.items() if s},
            "after": {route: summarize(s) for route, s in latency_after_s.items() if s},
        },
        "checks": _checks(mailing, row, summary),
        "progress": _thin(followed.progress),
    }


def _throughput(
    total: int, row: dict[str, Any], timeline: Timeline, progress: list[tuple[float, int]]
) -> dict[str, Any]:
    # Both ends are the database's own clock: the creating and the finishing transaction.
    created_to_finished_s = (row["updated_at"] - row["created_at"]).total_seconds()
    requests_s = None
    if timeline.first_request_at is not None and timeline.last_request_at is not None:
        requests_s = timeline.last_request_at - timeline.first_request_at
    return {
        "created_to_finished_s": round(created_to_finished_s, 2),
        "messages_per_s": _rate(total, created_to_finished_s),
        "first_to_last_request_s": None if requests_s is None else round(requests_s, 2),
        "stub_messages_per_s": _rate(total, requests_s),
        "steady_messages_per_s": _steady_rate(progress),
    }


def _steady_rate(progress: list[tuple[float, int]]) -> float | None:
    """The rate between 10 % and 90 % of the messages final: no start-up, no tail."""
    if not progress or progress[-1][1] == 0:
        return None
    total = progress[-1][1]
    low = next(p for p in progress if p[1] >= total * 0.1)
    high = next(p for p in progress if p[1] >= total * 0.9)
    if high[0] <= low[0]:
        return None
    return round((high[1] - low[1]) / (high[0] - low[0]), 1)


def _materialisation(
    mailing_id: int, row: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """From the planner's ``mailing.started`` line to its ``audience.materialised`` line: both
    are written after their transaction committed, by one process's clock, so this is the time
    from the mailing running to its whole audience being in the database. The database alone
    cannot say it: it keeps no start time (each chunk overwrites ``updated_at``), and
    ``materialized_at`` is ``now()``, the start of the last chunk's transaction, not its end.
    Dispatch batches run between chunks (a tick takes turns), so they are inside this time."""
    started = _event(events, "mailing.started", mailing_id)
    done = _event(events, "audience.materialised", mailing_id)
    return {
        "started_to_materialised_s": _seconds(_logged_at(started), _logged_at(done)),
        "planner_logged_s": round(done["duration_ms"] / 1000, 2) if done else None,
        "created_to_materialized_at_s": _seconds(row["created_at"], row["materialized_at"]),
        "messages": done["count"] if done else None,
    }


def _logged_at(event: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(event["timestamp"]) if event else None


def _dispatch(mailing_id: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The planner's dispatch batches (claim, publish each with a confirm, mark queued,
    commit), from its ``dispatch.batch`` lines: how fast it publishes while it does."""
    batches = [
        e
        for e in events
        if e.get("event") == "dispatch.batch" and e.get("mailing_id") == mailing_id
    ]
    messages = sum(e["count"] for e in batches)
    busy_s = sum(e["duration_ms"] for e in batches) / 1000
    return {
        "batches": len(batches),
        "messages": messages,
        "busy_s": round(busy_s, 2),
        "messages_per_busy_s": _rate(messages, busy_s),
        "first_batch_s": round(batches[0]["duration_ms"] / 1000, 2) if batches else None,
    }


def _event(events: list[dict[str, Any]], name: str, mailing_id: int) -> dict[str, Any] | None:
    return next(
        (e for e in events if e.get("event") == name and e.get("mailing_id") == mailing_id), None
    )


def _checks(
    mailing: dict[str, Any], row: dict[str, Any], summary: dict[str, Any]
) -> dict[str, Any]:
    by_status = mailing["stats"]["by_status"]
    unfinished = by_status[MessageStatus.PENDING.value] + by_status[MessageStatus.QUEUED.value]
    return {
        "finished": mailing["status"] == "finished",
        "all_final": unfinished == 0,
        "finished_before_deadline": row["updated_at"] < row["end_at"],
        "sent_equals_stub_successes": by_status["sent"] == summary["successes"],
        "duplicate_successes": summary["duplicate_successes"],
        "sent": by_status["sent"],
        "failed": by_status["failed"],
        "expired": by_status["expired"],
        "cancelled": by_status["cancelled"],
    }


def _thin(progress: list[tuple[float, int]]) -> list[list[float]]:
    kept: list[list[float]] = []
    for at_s, done in progress:
        if not kept or at_s - kept[-1][0] >= PROGRESS_STEP_S or at_s == progress[-1][0]:
            kept.append([at_s, done])
    return kept


def _since(start: datetime, instant: float | None) -> float | None:
    return None if instant is None else round(instant - start.timestamp(), 3)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 2)


def _rate(count: int, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
