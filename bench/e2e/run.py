"""One scenario: a fresh stack, seeded clients, one mailing to all of them, followed to its end."""

import asyncio
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from sqlalchemy.engine import make_url

from bench.e2e import figures, queues
from bench.e2e.errors import BenchFailed
from bench.e2e.follow import first_request_at, follow, last_request_at, time_after
from bench.e2e.meter import ProcessMeter, busy_fraction, postgres_pids, rabbitmq_pids
from bench.e2e.procstat import parent_pid
from bench.e2e.profile import Profiler
from bench.e2e.scenarios import Scenario, deadline_s
from bench.e2e.stack import API_TOKEN, BenchStack, bench_stack
from services.stack.demo import TEXT
from services.stack.seed import copy_clients, demo_clients

HTTP_TIMEOUT_S = 30.0
IDLE_PROBE_S = 3.0
QUIET_BUSY = 0.15
"""The machine counts as quiet below this share of its cores busy, the stack idle."""
FINISH_GRACE_S = 120.0
"""After ``end_at``, how long a run may wait for the planner to settle what is left."""


@dataclass(frozen=True)
class RunOptions:
    """What the command line chose for every scenario."""

    admin_url: str
    amqp_url: str
    results_dir: Path
    stamp: str
    after_requests: int = 200
    wait_quiet_s: float = 0.0
    """Before each mailing, how long to wait for the machine to be quiet (0: not at all)."""
    profile: bool = False
    """Sample every Python service with py-spy over the mailing (see ``profile``)."""
    seed: int = 7


async def run_scenario(scenario: Scenario, options: RunOptions, console: Console) -> dict[str, Any]:
    """Run ``scenario`` on a stack of its own and return its figures (see ``figures``)."""
    log_path = options.results_dir / f"e2e-{options.stamp}-{scenario.name}.log"
    console.print(f"[bold]{scenario.name}[/bold]: {scenario.title}; service logs: {log_path}")
    started = time.monotonic()
    async with bench_stack(
        admin_url=options.admin_url,
        amqp_url=options.amqp_url,
        senders=scenario.senders,
        settings=scenario.settings,
        log_path=log_path,
    ) as stack:
        console.print(f"  stack ready in {time.monotonic() - started:.1f} s")
        measured = await stack.supervisor.guard(_drive(stack, scenario, options, console))
    measured["log"] = {
        "path": str(log_path),
        "lines": dict(stack.tally.lines),
        "bytes": dict(stack.tally.bytes),
        "errors": dict(stack.tally.errors),
    }
    return measured


async def _drive(
    stack: BenchStack, scenario: Scenario, options: RunOptions, console: Console
) -> dict[str, Any]:
    seeded = await _seed(stack.database_url, scenario.clients, options.seed)
    console.print(f"  seeded {seeded['clients']:,} clients by COPY in {seeded['seed_s']:.1f} s")
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    api = httpx.AsyncClient(base_url=stack.plan.api_url, headers=headers, timeout=HTTP_TIMEOUT_S)
    stub = httpx.AsyncClient(base_url=stack.stub_url, timeout=HTTP_TIMEOUT_S)
    async with api, stub:
        await _prepare_stub(stub, scenario)
        background_busy = await quiet_machine(options.wait_quiet_s, console)
        meter = ProcessMeter(
            stack.service_pids(),
            {
                "bench": lambda: [os.getpid()],
                "postgres": postgres_pids(seeded.pop("postmaster_pid")),
                "rabbitmq": rabbitmq_pids(),
            },
        )
        profiler = Profiler(stack.service_pids(), options.results_dir, stack.log_path.stem)
        if options.profile:
            await profiler.start()
        meter.start()
        depths: list[tuple[float, dict[str, int]]] = []
        sampler = asyncio.create_task(queues.sample(stack.vhost_url, depths), name="bench-queues")
        mailing = await _create_mailing(api, scenario.clients)
        console.print(f"  mailing {mailing['id']} created; following it")
        first_request = asyncio.create_task(first_request_at(stub), name="bench-first-request")
        try:
            timeout_s = deadline_s(scenario.clients) + FINISH_GRACE_S
            followed = await follow(api, mailing["id"], timeout_s, console)
        finally:
            first_request.cancel()
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        messages = followed.mailing["stats"]["total"]
        processes = await meter.stop(messages)
        profile = await profiler.stop() if options.profile else None
        first_at = first_request.result() if first_request.done() else None
        row = await _mailing_row(stack.database_url, mailing["id"])
        summary = (await stub.get("/_stub/summary")).raise_for_status().json()
        last_at = await last_request_at(stub, row["updated_at"] - timedelta(seconds=30))
        console.print("  finished; timing the statistics endpoints afterwards")
        after = await time_after(api, mailing["id"], options.after_requests)
    result = figures.scenario_figures(
        scenario,
        seeded=seeded,
        followed=followed,
        row=row,
        timeline=figures.Timeline(first_at, last_at),
        summary=summary,
        processes=processes,
        latency_after_s=after,
        planner_events=stack.tally.planner_events,
    )
    return result | {
        "background_busy": background_busy,
        "queues": queues.summarize(depths) | {"series": depths},
        "profile": profile,
    }


async def quiet_machine(wait_s: float, console: Console) -> float:
    """How busy the machine is with the stack idle, after waiting up to ``wait_s`` for it to
    drop below :data:`QUIET_BUSY` (another job on a shared machine skews every figure)."""
    give_up_at = time.monotonic() + wait_s
    busy = await busy_fraction(IDLE_PROBE_S)
    if busy >= QUIET_BUSY and wait_s:
        console.print(f"  machine {busy:.0%} busy with the stack idle; waiting up to {wait_s:g} s")
    while busy >= QUIET_BUSY and time.monotonic() < give_up_at:
        busy = await busy_fraction(IDLE_PROBE_S)
    return busy


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _seed(database_url: str, count: int, seed: int) -> dict[str, Any]:
    """``count`` demo clients by COPY, then ANALYZE (what autovacuum would soon do)."""
    started = time.perf_counter()
    clients = demo_clients(count, f"b{seed}", random.Random(seed))
    inserted = await copy_clients(database_url, clients)
    seed_s = time.perf_counter() - started
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        await connection.execute("ANALYZE clients")
        # The server's processes are this backend's parent and its children: find the parent
        # while the backend is still there.
        postmaster_pid = parent_pid(await connection.fetchval("SELECT pg_backend_pid()"))
    finally:
        await connection.close()
    if inserted != count:
        raise BenchFailed(f"seeded {inserted:,} clients, wanted {count:,}")
    return {"clients": inserted, "seed_s": round(seed_s, 2), "postmaster_pid": postmaster_pid}


async def _prepare_stub(stub: httpx.AsyncClient, scenario: Scenario) -> None:
    # A clean journal, so that the summary counts this mailing only; the whole behaviour is
    # sent, so that nothing is left over from the stub's defaults or an earlier call.
    behaviour = {"latency_ms": 0, "error_rate": 0.0, "hang_rate": 0.0, **scenario.behaviour}
    for response in (
        await stub.delete("/_stub/journal"),
        await stub.put("/_stub/behaviour", json=behaviour),
    ):
        if response.is_error:
            raise BenchFailed(f"the stub refused {response.request.url.path}: {response.text}")


async def _create_mailing(api: httpx.AsyncClient, clients: int) -> dict[str, Any]:
    """One mailing to every client (an empty filter), starting now."""
    now = datetime.now(UTC)
    body = {
        "start_at": now.isoformat(),
        "end_at": (now + timedelta(seconds=deadline_s(clients))).isoformat(),
        "text": TEXT,
        "filter": {},
    }
    response = await api.post("/api/v1/mailings", json=body)
    if response.status_code != httpx.codes.CREATED:
        raise BenchFailed(f"creating the mailing answered {response.status_code}: {response.text}")
    mailing: dict[str, Any] = response.json()
    return mailing


async def _mailing_row(database_url: str, mailing_id: int) -> dict[str, Any]:
    """The timestamps the API does not show: when the audience was fixed, above all."""
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        row = await connection.fetchrow(
            "SELECT status, created_at, updated_at, materialized_at, end_at"
            " FROM mailings WHERE id = $1",
            mailing_id,
        )
    finally:
        await connection.close()
    if row is None:
        raise BenchFailed(f"mailing {mailing_id} is not in the database")
    return dict(row)
