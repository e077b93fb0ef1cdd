"""Latency of the statistics endpoints over a million messages.

Creates a database of its own, migrates it, loads clients * mailings messages with COPY, starts
the real API (``mailer api``) on a free port and times ``GET /api/v1/stats`` and
``GET /api/v1/mailings/{id}`` (which read the trigger-kept counters), next to the naive
``GROUP BY`` over ``messages`` that the counters replace.

Usage::

    .venv/bin/python -m bench.stats_latency                   # 10,000 * 100 = 1,000,000 messages
    .venv/bin/python -m bench.stats_latency --clients 1000 --mailings 10 --requests 50
    .venv/bin/python -m bench.stats_latency --keep            # leave the database for a look

Needs PostgreSQL (``--admin-url``, default the local ``postgres`` database). Prints a table
and writes the figures to ``bench/results/stats_latency.json``.
"""

import asyncio
import json
import platform
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from bench.processes import running_api
from bench.seed import SeedResult, seed
from shared.migrate import create_database, drop_database, upgrade

RESULTS_DIR = Path(__file__).parent / "results"
TOKEN = "bench-api-token-7d2e41"
NAIVE_QUERY = "SELECT mailing_id, status, count(*) FROM messages GROUP BY 1, 2"
COUNTERS_QUERY = (
    "SELECT m.id, m.status, c.* FROM mailings m"
    " JOIN mailing_counts c ON c.mailing_id = m.id ORDER BY m.id"
)

console = Console(width=110)  # a readable table when piped to a file, too


def _dsn(url: str) -> str:
    """The libpq form asyncpg takes, from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def summarize(samples_s: list[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    figures = {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ms[-1]}
    figures["mean"] = statistics.fmean(ms)
    return {name: round(value, 3) for name, value in figures.items()} | {"n": len(ms)}


async def _timed(call: Callable[[], Awaitable[None]], warmup: int, runs: int) -> dict[str, float]:
    for _ in range(warmup):
        await call()
    samples_s = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples_s.append(time.perf_counter() - started)
    return summarize(samples_s)


async def _seed_database(url: str, clients: int, mailings: int, seed_value: int) -> dict[str, Any]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        result: SeedResult = await seed(
            conn, clients=clients, mailings=mailings, rng=random.Random(seed_value)
        )
        counted = await conn.fetchval(
            "SELECT sum(pending + queued + sent + failed + expired + cancelled)::bigint"
            " FROM mailing_counts"
        )
        if counted != result.messages:
            raise RuntimeError(f"mailing_counts sum to {counted}, expected {result.messages}")
        started = time.perf_counter()
        # What autovacuum would soon do: fresh statistics and visibility map for both plans.
        await conn.execute("VACUUM (ANALYZE) clients, mailings, messages, mailing_counts")
        vacuum_s = time.perf_counter() - started
    finally:
        await conn.close()
    figures = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(result).items()}
    return figures | {
        "counters_sum": counted,
        "messages_per_s": round(result.messages / result.messages_s),
        "vacuum_analyze_s": round(vacuum_s, 3),
    }


async def _measure_sql(url: str, warmup: int, runs: int) -> dict[str, dict[str, float]]:
    conn = await asyncpg.connect(_dsn(url))
    try:

        async def naive() -> None:
            await conn.fetch(NAIVE_QUERY)

        async def counters() -> None:
            await conn.fetch(COUNTERS_QUERY)

        return {
            "sql naive GROUP BY messages": await _timed(naive, warmup, runs),
            "sql counters (mailing_counts)": await _timed(counters, warmup, runs),
        }
    finally:
        await conn.close()


async def _measure_api(
    base_url: str, mailing_id: int, expected_total: int, warmup: int, runs: int
) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0) as client:
        stats = (await client.get("/api/v1/stats")).raise_for_status().json()
        if stats["total"] != expected_total:
            raise RuntimeError(f"/stats total is {stats['total']}, expected {expected_total}")

        async def get(path: str) -> None:
            (await client.get(path)).raise_for_status()

        return {
            "GET /api/v1/stats": await _timed(lambda: get("/api/v1/stats"), warmup, runs),
            "GET /api/v1/mailings/{id}": await _timed(
                lambda: get(f"/api/v1/mailings/{mailing_id}"), warmup, runs
            ),
        }


async def run(
    admin_url: str, clients: int, mailings: int, requests: int, warmup: int, keep: bool
) -> dict[str, Any]:
    name = f"mailer_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    await create_database(admin_url, name)
    try:
        console.print(f"database {name}: migrating and seeding…")
        await asyncio.to_thread(upgrade, url)  # Alembic's env.py runs its own event loop
        seeded = await _seed_database(url, clients, mailings, seed_value=1)
        console.print(f"seeded in {seeded['total_s']:.1f} s; measuring…")
        latency = await _measure_sql(url, warmup=2, runs=max(requests // 10, 10))
        RESULTS_DIR.mkdir(exist_ok=True)
        async with running_api(url, TOKEN, RESULTS_DIR / "stats_latency.api.log") as base_url:
            latency |= await _measure_api(
                base_url,
                mailing_id=1,
                expected_total=seeded["messages"],
                warmup=warmup,
                runs=requests,
            )
        server = await _server_version(url)
    finally:
        if keep:
            console.print(f"kept database {name}: {url}")
        else:
            await drop_database(admin_url, name)
    return {
        "database": name if keep else None,
        "postgres": server,
        "python": platform.python_version(),
        "seed": seeded,
        "latency_ms": latency,
    }


async def _server_version(url: str) -> str:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def report(results: dict[str, Any]) -> None:
    seeded = results["seed"]
    console.print(
        f"seeded {seeded['clients']:,} clients, {seeded['mailings']:,} mailings,"
        f" {seeded['messages']:,} messages: messages in {seeded['messages_s']:.1f} s"
        f" ({seeded['messages_per_s']:,} rows/s), all in {seeded['total_s']:.1f} s;"
        f" counters sum to {seeded['counters_sum']:,}"
    )
    table = Table(title=f"latency, ms (PostgreSQL {results['postgres']})")
    table.add_column("what")
    for column in ("n", "p50", "p95", "p99", "max", "mean"):
        table.add_column(column, justify="right")
    for what, figures in results["latency_ms"].items():
        table.add_row(what, *(f"{figures[c]:g}" for c in ("n", "p50", "p95", "p99", "max", "mean")))
    console.print(table)


def main(
    clients: Annotated[int, typer.Option(min=1, help="Clients to create.")] = 10_000,
    mailings: Annotated[int, typer.Option(min=1, help="Mailings, each to every client.")] = 100,
    requests: Annotated[int, typer.Option(min=10, help="Timed requests per endpoint.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed requests first.")] = 10,
    keep: Annotated[bool, typer.Option(help="Keep the database afterwards.")] = False,
    admin_url: Annotated[str, typer.Option(help="Server to create the database on.")] = (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    ),
) -> None:
    """Seed clients * mailings messages and time the statistics endpoints."""
    results = asyncio.run(run(admin_url, clients, mailings, requests, warmup, keep))
    report(results)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "stats_latency.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
