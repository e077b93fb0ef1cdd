"""How many results per second the status service writes, from a full queue.

Creates a database and a RabbitMQ vhost of its own, seeds one running mailing with
``--results`` queued messages, publishes one final result per message (mostly ``sent``) with
confirms, ``--per-body`` of them in one body as a sender batches them (1: a body each, as
senders before batches published), and only then starts the status service in-process: the
figure is consume + merge + write + ack, not the publisher's rate. It then checks every
message is final and the mailing finished, and drops the database and the vhost.

Usage::

    .venv/bin/python -m bench.status_throughput                     # 50,000 results
    .venv/bin/python -m bench.status_throughput --results 20000 --batch-size 100

Needs PostgreSQL (``--admin-url``) and RabbitMQ with ``rabbitmqctl`` (``--amqp-url``).
Prints the figures and writes ``bench/results/status_throughput.json``.
"""

import asyncio
import json
import platform
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from pydantic import BaseModel, SecretStr
from rich.console import Console
from sqlalchemy.engine import make_url

from services.status.service import start
from services.status.settings import StatusSettings
from shared import topology
from shared.broker import PUBLISH_CONCURRENCY, Publisher, connect
from shared.logs import configure_logging
from shared.messages import MAX_RESULTS_PER_BATCH, Result, ResultBatch
from shared.migrate import create_database, drop_database, upgrade
from shared.settings import BrokerSettings, DatabaseSettings
from shared.statuses import MessageStatus

RESULTS_DIR = Path(__file__).parent / "results"
console = Console(width=110)


def _ctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/sbin")
    if ctl is None:
        raise RuntimeError("rabbitmqctl not found: the benchmark creates a vhost of its own")
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)


async def _seed(url: str, count: int) -> list[int]:
    """One running, materialised mailing with ``count`` queued messages; their ids."""
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        mailing_id = await conn.fetchval(
            "INSERT INTO mailings (start_at, end_at, text, status, materialized_at)"
            " VALUES (now(), now() + interval '1 hour', 'bench', 'running', now()) RETURNING id"
        )
        phones = [f"79{n:09d}" for n in range(count)]
        await conn.execute(
            "INSERT INTO clients (phone, operator_code)"
            " SELECT p, substr(p, 2, 3) FROM unnest($1::text[]) AS p",
            phones,
        )
        rows = await conn.fetch(
            "INSERT INTO messages (mailing_id, client_id, status)"
            " SELECT $1, id, 'queued' FROM clients ORDER BY id RETURNING id",
            mailing_id,
        )
        await conn.execute("VACUUM (ANALYZE) messages, mailings, mailing_counts")
        return [row["id"] for row in rows]
    finally:
        await conn.close()


def _result(message_id: int) -> Result:
    # Nine in ten sent, the rest failed or expired: what a healthy mailing reports.
    match message_id % 10:
        case 0:
            return Result(
                message_id=message_id,
                status=MessageStatus.FAILED,
                attempts=3,
                last_error="400 refused",
            )
        case 1:
            return Result(
                message_id=message_id,
                status=MessageStatus.EXPIRED,
                attempts=2,
                last_error="deadline",
            )
        case _:
            return Result(
                message_id=message_id,
                status=MessageStatus.SENT,
                attempts=1,
                sent_at=datetime.now(UTC),
            )


async def _publish(amqp_url: str, ids: list[int], per_body: int) -> tuple[float, int]:
    """Publish one result per id with confirms, ``per_body`` in a body; the seconds it took,
    and how many bodies."""
    bodies: list[tuple[BaseModel, dict[str, Any] | None]] = []
    for first in range(0, len(ids), per_body):
        results = [_result(i) for i in ids[first : first + per_body]]
        if per_body == 1:
            bodies.append((results[0], None))
        else:
            count = {topology.RESULTS_COUNT_HEADER: len(results)}
            bodies.append((ResultBatch(results=results), count))
    gate = asyncio.Semaphore(PUBLISH_CONCURRENCY)
    connection = await connect(amqp_url)
    try:
        publisher = await Publisher.open(connection)

        async def one(body: BaseModel, headers: dict[str, Any] | None) -> None:
            async with gate:
                await publisher.publish(
                    topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, body, headers
                )

        started = time.perf_counter()
        await asyncio.gather(*(one(body, headers) for body, headers in bodies))
        return time.perf_counter() - started, len(bodies)
    finally:
        await connection.close()


async def _drain(database_url: str, amqp_url: str, settings: StatusSettings, count: int) -> float:
    """Start the service on the full queue; the seconds until it acked ``count`` bodies."""
    started = time.perf_counter()
    service = await start(
        settings,
        DatabaseSettings(_env_file=None, database_url=database_url),
        BrokerSettings(_env_file=None, rabbitmq_url=SecretStr(amqp_url)),
    )
    while service.counters.acked < count:
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"only {service.counters.acked} of {count} acked in 600 s")
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await service.stop()
    console.print(f"batches: {service.counters.batches}, counters: {vars(service.counters)}")
    return elapsed


async def _check(url: str, count: int) -> dict[str, Any]:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        counts = dict(await conn.fetchrow("SELECT * FROM mailing_counts"))
        status = await conn.fetchval("SELECT status FROM mailings")
    finally:
        await conn.close()
    if counts["pending"] + counts["queued"] or status != "finished":
        raise RuntimeError(f"not every result was written: {counts}, mailing {status}")
    return {"counts": {k: v for k, v in counts.items() if k != "mailing_id"}, "mailing": status}


async def run(
    admin_url: str, amqp_url: str, count: int, per_body: int, settings: StatusSettings
) -> dict[str, Any]:
    name = f"mailer_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    vhost_url = f"{amqp_url.rstrip('/')}/{name}"
    await create_database(admin_url, name)
    _ctl("add_vhost", name)
    try:
        user = make_url(amqp_url.replace("amqp://", "postgresql://", 1)).username or "guest"
        _ctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        await asyncio.to_thread(upgrade, url)  # Alembic's env.py runs its own event loop
        ids = await _seed(url, count)
        console.print(f"seeded {count:,} queued messages; publishing their results…")
        publish_s, bodies = await _publish(vhost_url, ids, per_body)
        console.print(f"published in {publish_s:.1f} s; starting the status service…")
        drain_s = await _drain(url, vhost_url, settings, bodies)
        checked = await _check(url, count)
    finally:
        _ctl("delete_vhost", name)
        await drop_database(admin_url, name)
    return {
        "python": platform.python_version(),
        "results": count,
        "results_per_body": per_body,
        "settings": settings.model_dump(),
        "publish_per_s": round(count / publish_s),
        "drain_s": round(drain_s, 2),
        "written_per_s": round(count / drain_s),
        **checked,
    }


def main(
    results: Annotated[int, typer.Option(min=1, help="Messages, one result each.")] = 50_000,
    per_body: Annotated[
        int,
        typer.Option(min=1, max=MAX_RESULTS_PER_BATCH, help="Results in one body (1: unbatched)."),
    ] = 10,
    batch_size: Annotated[int, typer.Option(min=1)] = 500,
    prefetch: Annotated[int, typer.Option(min=1)] = 2_000,
    flush_interval_ms: Annotated[int, typer.Option(min=1)] = 50,
    admin_url: Annotated[str, typer.Option(help="Server to create the database on.")] = (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    ),
    amqp_url: Annotated[str, typer.Option(help="RabbitMQ server (a vhost is created).")] = (
        "amqp://guest:guest@127.0.0.1:5672/"
    ),
) -> None:
    """Seed, publish ``results`` results, and time the status service writing them."""
    configure_logging(level="WARNING", log_format="console")  # not a line per batch
    settings = StatusSettings(
        _env_file=None,
        status_batch_size=batch_size,
        status_prefetch=prefetch,
        status_flush_interval_ms=flush_interval_ms,
    )
    figures = asyncio.run(run(admin_url, amqp_url, results, per_body, settings))
    console.print(
        f"{figures['results']:,} results written in {figures['drain_s']} s:"
        f" [bold]{figures['written_per_s']:,} results/s[/bold]"
        f" (publishing them: {figures['publish_per_s']:,}/s)"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "status_throughput.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    console.print(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
