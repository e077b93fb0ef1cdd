"""Following a mailing to its end, timing the statistics endpoints all along and after.

The same requests do both: every ``SAMPLE_INTERVAL_S`` the follower reads the mailing (which
tells it the progress) and the overall statistics, and times each answer. So the latency
figures are what an operator watching the mailing would have seen, one request at a time.
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console

from bench.e2e.errors import BenchFailed
from services.stack.report import DONE, UNFINISHED

MAILING_ROUTE = "GET /api/v1/mailings/{id}"
STATS_ROUTE = "GET /api/v1/stats"
SAMPLE_INTERVAL_S = 0.2
PROGRESS_EVERY_S = 10.0
STALL_S = 300.0
"""No message became final for this long: the run is stuck (the longest retry delay is 120 s)."""
FIRST_REQUEST_POLL_S = 0.02


@dataclass
class Followed:
    """The mailing's last answer and what following it measured."""

    mailing: dict[str, Any]
    latency_s: dict[str, list[float]]
    progress: list[tuple[float, int]]
    """(seconds since following began, messages final then), one per sample."""


def final_count(mailing: dict[str, Any]) -> int:
    stats = mailing["stats"]
    return int(stats["total"] - sum(stats["by_status"][status] for status in UNFINISHED))


async def follow(
    api: httpx.AsyncClient, mailing_id: int, timeout_s: float, console: Console
) -> Followed:
    """Poll until the mailing is finished or cancelled; :class:`BenchFailed` if it stalls."""
    path = f"/api/v1/mailings/{mailing_id}"
    latency: dict[str, list[float]] = {MAILING_ROUTE: [], STATS_ROUTE: []}
    progress: list[tuple[float, int]] = []
    started = last_change = last_print = time.monotonic()
    while True:
        mailing = await timed_get(api, path, latency[MAILING_ROUTE])
        await timed_get(api, "/api/v1/stats", latency[STATS_ROUTE])
        now, done = time.monotonic(), final_count(mailing)
        if progress and done != progress[-1][1]:
            last_change = now
        progress.append((round(now - started, 2), done))
        if mailing["status"] in DONE:
            return Followed(mailing, latency, progress)
        if now - last_print >= PROGRESS_EVERY_S:
            last_print = now
            rate = done / (now - started)
            total = mailing["stats"]["total"]
            console.print(f"  {done:>9,} of {total:,} final, {rate:,.0f} messages/s")
        if now - last_change > STALL_S or now - started > timeout_s:
            raise BenchFailed(f"mailing {mailing_id} stuck at {done:,} final messages")
        await asyncio.sleep(SAMPLE_INTERVAL_S)


async def timed_get(api: httpx.AsyncClient, path: str, samples_s: list[float]) -> Any:
    """GET ``path`` (it must answer 200), add its duration to ``samples_s``, return the JSON."""
    started = time.perf_counter()
    response = await api.get(path)
    samples_s.append(time.perf_counter() - started)
    if response.status_code != httpx.codes.OK:
        raise BenchFailed(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    return response.json()


async def time_after(api: httpx.AsyncClient, mailing_id: int, requests: int) -> dict[str, Any]:
    """``requests`` sequential GETs of each statistics route, once the mailing is over."""
    latency: dict[str, list[float]] = {MAILING_ROUTE: [], STATS_ROUTE: []}
    for _ in range(requests):
        await timed_get(api, f"/api/v1/mailings/{mailing_id}", latency[MAILING_ROUTE])
    for _ in range(requests):
        await timed_get(api, "/api/v1/stats", latency[STATS_ROUTE])
    return latency


async def first_request_at(stub: httpx.AsyncClient) -> float:
    """When the stub received its first request (the journal was cleared before the mailing).

    The journal keeps only its newest entries, so it is read as soon as the summary counts a
    request: then it still holds the first one, and the earliest ``received_at`` is exact.
    """
    while True:
        summary = (await stub.get("/_stub/summary")).raise_for_status().json()
        if summary["requests"]:
            entries = (await stub.get("/_stub/journal")).raise_for_status().json()
            if entries:
                return min(_instant(entry) for entry in entries)
        await asyncio.sleep(FIRST_REQUEST_POLL_S)


async def last_request_at(stub: httpx.AsyncClient, near: datetime) -> float | None:
    """When the stub received its last request, looked for from ``near`` on (then anywhere)."""
    for params in ({"since": near.isoformat()}, {}):
        entries = (await stub.get("/_stub/journal", params=params)).raise_for_status().json()
        if entries:
            return max(_instant(entry) for entry in entries)
    return None


def _instant(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["received_at"]).timestamp()
