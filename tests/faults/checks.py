"""SPEC §5 judged from outside: the stub's journal, the database and the broker, nothing else."""

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
from sqlalchemy import text

from shared import topology
from tests.e2e.helpers import clients_matching, instant, messages_per_client, successes
from tests.e2e.stack import API_TOKEN
from tests.faults.conftest import Scene
from tests.waiting import eventually

FINAL = {"sent", "failed", "expired", "cancelled"}
# Once the mailing is finished, copies a fault left behind (a redelivered work message whose
# retry was already published) still go round their retry queue and are skipped: the longest
# such round a scenario here makes is the 30 s queue.
DRAIN_S = 45.0
PROBE_TIMEOUT_S = 5.0
_TOKEN_SETTINGS = ("MAILER_STUB_TOKEN", "MAILER_PROVIDER_TOKEN", "MAILER_API_TOKEN")
_WORK_QUEUES = (topology.WORK_QUEUE, *map(topology.retry_queue, topology.RETRY_DELAYS_S))


@dataclass(frozen=True)
class Figures:
    """One scenario's row of the table in the closing note."""

    messages: int
    lost: int
    """Messages not final at the end."""
    late_requests: int
    """Requests at or after the mailing's end_at."""
    duplicate_successes: int
    recover_s: float | None = None
    """From the end of the fault to the first success after it."""
    cut_at_deadline: int = 0
    """Expired messages whose request the stub answered as the deadline cut it off."""


def report(scenario: str, figures: Figures) -> None:
    """One line per scenario for the summary (``pytest -s tests/faults``)."""
    print(f"\nfaults | {scenario} | {figures}")


async def judge(
    scene: Scene,
    mailing_id: int,
    run_id: str,
    fault_ended_at: float | None = None,
    *,
    in_flight_at_end_s: float = 0.0,
    poison: int = 0,
) -> Figures:
    """Check what must hold whatever the fault; return the figures that depend on it.

    ``poison``: how many bodies the scenario put in the queues that are not messages; the
    poison queue must hold exactly those, and no work message may have been dead-lettered.

    ``in_flight_at_end_s``: how long a call takes, for a mailing whose deadline came while
    calls were in flight. The sender's timeout cuts such a call off at ``end_at`` and the
    message expires, but the stub may answer in the same few milliseconds and not yet know
    that the client left: its journal then shows a success nobody received.
    """
    mailing = await scene.api.mailing(mailing_id)
    messages = await scene.api.messages(mailing_id)
    journal = await scene.stub.journal()
    audience = await clients_matching(scene.engine, run_id)
    ids = {message["id"] for message in messages}

    # Audience: exactly one Message per matching client.
    assert await messages_per_client(scene.engine, mailing_id) == dict.fromkeys(audience, 1)
    # No duplicates: every request names a message of the mailing, with one body per msgId.
    mine = [entry for entry in journal if entry["msg_id"] in ids]
    assert {entry["msg_id"] for entry in journal} <= ids, "a request for an id no message has"
    bodies = {entry["msg_id"]: set() for entry in mine}
    for entry in mine:
        bodies[entry["msg_id"]].add(json.dumps(entry["body"], sort_keys=True))
    assert all(len(found) == 1 for found in bodies.values()), "one msgId, several bodies"
    # Consistent statistics: counts add up, and sent is what the provider confirmed.
    succeeded = successes(mine)
    stats = mailing["stats"]
    assert stats["total"] == sum(stats["by_status"].values()) == len(messages)
    sent = {message["id"] for message in messages if message["status"] == "sent"}
    end_at = instant(mailing["end_at"])
    cut = {
        message["id"]
        for message in messages
        if message["status"] == "expired"
        and message["id"] in succeeded
        and all(
            end_at - in_flight_at_end_s <= instant(e["received_at"]) < end_at
            for e in mine
            if e["msg_id"] == message["id"] and e["outcome"] == "ok"
        )
    }
    differing = {
        message["id"]: (message["status"], [e for e in mine if e["msg_id"] == message["id"]])
        for message in messages
        if (message["id"] in sent) != (message["id"] in succeeded) and message["id"] not in cut
    }
    assert not differing, (
        f"sent differs from the provider's successes (end_at {end_at}): {differing}"
    )
    late = [entry for entry in mine if instant(entry["received_at"]) >= end_at]
    assert not late, f"requests at or after end_at {end_at}: {late}"
    _assert_logs_clean(scene)
    # The broker: work and results drained, dead letters only for poison.
    drained = {"work": 0, "results": 0, "work dead-lettered": 0, "poison": poison}
    await eventually(lambda: _left_in_broker(scene), lambda left: left == drained, DRAIN_S, 0.5)
    after = sorted(
        instant(entry["received_at"])
        for entry in mine
        if entry["outcome"] == "ok"
        and fault_ended_at is not None
        and instant(entry["received_at"]) >= fault_ended_at
    )
    return Figures(
        messages=len(messages),
        lost=sum(message["status"] not in FINAL for message in messages),
        late_requests=len(late),
        duplicate_successes=sum(count - 1 for count in succeeded.values()),
        recover_s=round(after[0] - fault_ended_at, 2) if after and fault_ended_at else None,
        cut_at_deadline=len(cut),
    )


async def all_ready_after_s(scene: Scene, since: float, timeout_s: float) -> float:
    """Seconds from ``since`` until every planner, sender and status process of the stack
    answers ``/readyz`` 200: connected, and consuming again."""

    async def answers() -> dict[str, int]:
        found = {}
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
            for name, url in scene.stack.plan.health_urls.items():
                try:
                    found[name] = (await client.get(f"{url}/readyz")).status_code
                except httpx.TransportError:
                    found[name] = 0
        return found

    await eventually(answers, lambda found: set(found.values()) == {200}, timeout_s, 0.2)
    return round(time.time() - since, 2)


async def _left_in_broker(scene: Scene) -> dict[str, int]:
    """Ready messages of each kind (unacked ones are still in a consumer's hands)."""
    queues = {
        "work": _WORK_QUEUES,
        "results": (topology.RESULTS_QUEUE,),
        "work dead-lettered": (topology.WORK_DEAD_QUEUE,),
        "poison": (topology.POISON_QUEUE,),
    }
    connection = await aio_pika.connect(scene.stack.vhost_url)
    async with connection:
        channel = await connection.channel()
        left = dict.fromkeys(queues, 0)
        for kind, names in queues.items():
            for name in names:
                declared = await channel.declare_queue(name, passive=True)
                left[kind] += declared.declaration_result.message_count or 0
        return left


async def statuses(scene: Scene, mailing_id: int) -> Counter[str]:
    query = text("SELECT status, count(*) AS n FROM messages WHERE mailing_id = :id GROUP BY 1")
    async with scene.engine.connect() as connection:
        rows = (await connection.execute(query, {"id": mailing_id})).all()
    return Counter({row.status: row.n for row in rows})


def _assert_logs_clean(scene: Scene) -> None:
    """No process logged a token, and none logged a traceback: every fault here is one the
    services expect, and an expected fault is a warning line, not a stack dump."""
    env = scene.stack.plan.services[0].env
    secrets = [API_TOKEN, *(env[name] for name in _TOKEN_SETTINGS if env.get(name))]
    leaked = [line for line in scene.stack.lines if any(secret in line for secret in secrets)]
    assert not leaked, f"a token in the logs: {leaked[:3]}"
    # Every process that wrote, replacements started mid-scenario included.
    names = sorted({line.partition(" | ")[0].rstrip() for line in scene.stack.lines})
    dumped = tracebacks(scene, *names)
    assert not dumped, f"tracebacks for an expected fault: {dumped[:3]}"


def tracebacks(scene: Scene, *names: str) -> list[str]:
    """Lines of the named processes that carry a Python traceback."""
    found: list[str] = []
    for name in names:
        found += [json.dumps(event) for event in scene.stack.events(name) if _has_traceback(event)]
    return found


def _has_traceback(event: dict[str, Any]) -> bool:
    return "exception" in event or "Traceback" in json.dumps(event)
