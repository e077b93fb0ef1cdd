"""A process of the stack killed with SIGKILL mid-mailing: nothing lost, at most its in-flight
work twice (SPEC §5 invariants 4 and 5)."""

import time
from typing import Any

from sqlalchemy import text

from services.stack.up import FRONT_LAYER, SENDER_LAYER, STATUS_LAYER
from tests.e2e.stack import Shape, Stack
from tests.faults.checks import Figures, judge, report, tracebacks
from tests.faults.conftest import Scene, Staging
from tests.waiting import eventually

CLIENTS = 1_500
PREFETCH = 50
# Requests take a while, so the killed process has work in flight, and the mailing is still
# sending once a replacement has started: one sender's 50 slots send about 170 a second.
SLOW = {"latency_ms": 300}
SETTLE_S = 90.0
SHAPE = Shape(senders=2, settings={"MAILER_SENDER_PREFETCH": str(PREFETCH)})


def kill(stack: Stack, name: str) -> None:
    [child] = [child for child in stack.supervisor.children if child.spec.name == name]
    child.process.kill()


async def materialised(scene: Scene, mailing_id: int) -> tuple[int, bool]:
    """How many messages the mailing has, and whether its audience is complete."""
    query = text(
        "SELECT (SELECT count(*) FROM messages WHERE mailing_id = :id) AS n,"
        " materialized_at IS NOT NULL AS done FROM mailings WHERE id = :id"
    )
    async with scene.engine.connect() as connection:
        row = (await connection.execute(query, {"id": mailing_id})).one()
    return int(row.n), bool(row.done)


async def test_a_sender_killed_with_requests_in_flight(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS, behaviour=SLOW, successes=300)

        kill(scene.stack, "sender-1")
        killed_at = time.time()
        replacement = await scene.stack.start("sender-3", "sender", SENDER_LAYER)
        await scene.still_sending(CLIENTS, "when the replacement sender had started")
        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id, killed_at)
        served_by_replacement = [
            event for event in scene.stack.events("sender-3") if event["event"] == "attempt.sent"
        ]
        survivors = tracebacks(scene, "sender-2", "sender-3", "status", "planner")
        await scene.stack.stop(replacement)

    report("sender killed (SIGKILL)", figures)
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == 0
    # Only what the killed sender held unacked can have gone out twice.
    assert figures.duplicate_successes <= PREFETCH
    assert served_by_replacement, "a sender started after the crash took work"
    assert survivors == []


async def test_the_status_service_killed_with_results_unwritten(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS, behaviour=SLOW, successes=300)

        kill(scene.stack, "status")
        await eventually(scene.stub.summary, lambda summary: summary["successes"] >= 800, 60)
        restarted = await scene.stack.start("status-2", "status", STATUS_LAYER)
        restarted_at = time.time()
        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id, restarted_at)
        await scene.stack.stop(restarted)

    report("status killed (SIGKILL)", figures)
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == 0
    # Results wait in RabbitMQ while no status service runs: nothing is sent again.
    assert figures.duplicate_successes == 0


# Small chunks and batches: the planner is killed with many transactions still ahead of it.
BATCH = 100
PLANNER_SHAPE = Shape(
    senders=2,
    settings={
        "MAILER_SENDER_PREFETCH": str(PREFETCH),
        "MAILER_PLANNER_AUDIENCE_CHUNK_SIZE": "200",
        "MAILER_PLANNER_DISPATCH_BATCH_SIZE": str(BATCH),
        "MAILER_PLANNER_BATCHES_PER_TICK": "1",
    },
)


async def planner_replaced(scene: Scene, run_id: str, mailing_id: int) -> tuple[Any, Figures]:
    """Kill the planner, start another, and follow the mailing to its end."""
    kill(scene.stack, "planner")
    killed_at = time.time()
    restarted = await scene.stack.start("planner-2", "planner", FRONT_LAYER)
    mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
    figures = await judge(scene, mailing_id, run_id, killed_at)
    await scene.stack.stop(restarted)
    return mailing, figures


async def test_the_planner_killed_while_materialising_the_audience(staged: Staging) -> None:
    async with staged(PLANNER_SHAPE) as scene:
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS * 2)
        midway = await eventually(
            lambda: materialised(scene, mailing_id), lambda found: found[0] > 0, 30, 0.005
        )

        mailing, figures = await planner_replaced(scene, run_id, mailing_id)

    report("planner killed during audience materialisation", figures)
    assert midway[1] is False, "killed before the audience was complete"
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS * 2
    assert figures.lost == figures.duplicate_successes == 0


async def test_the_planner_killed_while_dispatching(staged: Staging) -> None:
    async with staged(PLANNER_SHAPE) as scene:
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS, behaviour=SLOW, requests=200)

        mailing, figures = await planner_replaced(scene, run_id, mailing_id)

    report("planner killed during dispatch", figures)
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == 0
    # A batch published but not yet marked queued goes out again under the same msgIds; the
    # senders send only the copies of the dispatch that committed.
    assert figures.duplicate_successes == 0
