"""RabbitMQ stopped and started again while senders send: consumers come back, nothing is lost."""

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.stack.processes import Child
from services.stack.up import SENDER_LAYER, STATUS_LAYER
from tests.conftest import _rabbitmqctl
from tests.e2e.helpers import work_in_broker
from tests.e2e.stack import Shape
from tests.faults.checks import Figures, all_ready_after_s, judge, report, tracebacks
from tests.faults.conftest import Scene, Staging
from tests.waiting import eventually

CLIENTS = 1_500
OUTAGE_S = 5.0
BACK_WITHIN_S = 30.0  # the bound for consumers to return after a restart
SETTLE_S = 120.0
PREFETCH = 50
# Slow enough that the senders still have work when the broker is back: at 50 ms their 100
# slots sent the last 1,200 messages in about 0.6 s, about as long as `stop_app` takes.
LATENCY_MS = 400
SHAPE = Shape(senders=2, settings={"MAILER_SENDER_PREFETCH": str(PREFETCH)})
NODE_BOOT_S = 90.0
SENDER_STOP_TIMEOUT_S = 3.0
STOPPED_WITHIN_S = 8.0
"""A stop during an outage: 5 s for the consumer cancel no broker answers (the sender's stop
timeout runs out within it), up to 2 s for the sender's last results, and a margin. The status
service cancels its two consumers side by side: one after the other would take 10 s."""


def rabbitmqctl(*arguments: str) -> None:
    subprocess.run([_rabbitmqctl(), *arguments], check=True, capture_output=True, timeout=120)


def start_rabbitmq_node() -> None:
    """Start the stopped node as .ci/run does, and return once it has booted."""
    server = shutil.which("rabbitmq-server") or shutil.which(
        "rabbitmq-server", path="/usr/sbin:/sbin"
    )
    assert server, "rabbitmq-server not found: this scenario restarts the local broker"
    subprocess.run([server, "-detached"], check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + NODE_BOOT_S
    while True:
        booted = subprocess.run(
            [_rabbitmqctl(), "await_startup"], capture_output=True, timeout=NODE_BOOT_S
        )
        if booted.returncode == 0:
            return
        assert time.monotonic() < deadline, "RabbitMQ did not come back"
        time.sleep(1)


@dataclass(frozen=True)
class RiddenOut:
    """How a mailing came through a broker outage."""

    successes_before: int
    """Successes when the broker was back."""
    resumed: dict[str, Any]
    """The stub's summary once a success came after that."""
    mailing: dict[str, Any]
    ready_after_s: float
    """From the broker's return until every service's /readyz said 200."""
    figures: Figures
    work_left: int
    tracebacks: list[str]


async def ride_out(
    scene: Scene, run_id: str, mailing_id: int, stop: Callable[[], None], start: Callable[[], None]
) -> RiddenOut:
    """Stop the broker with ``stop`` for OUTAGE_S, start it with ``start``, then follow the
    mailing to its end."""
    stop()
    try:
        await asyncio.sleep(OUTAGE_S)
    finally:
        start()
    back_at = time.time()
    before = (await scene.still_sending(CLIENTS, "when the broker was back"))["successes"]
    resumed = await eventually(
        scene.stub.summary, lambda summary: summary["successes"] > before, BACK_WITHIN_S
    )
    ready_after_s = await all_ready_after_s(scene, back_at, BACK_WITHIN_S)
    mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
    return RiddenOut(
        successes_before=before,
        resumed=resumed,
        mailing=mailing,
        ready_after_s=ready_after_s,
        figures=await judge(scene, mailing_id, run_id, back_at),
        work_left=await work_in_broker(scene.stack.vhost_url),
        tracebacks=tracebacks(scene, "sender-1", "sender-2", "status", "planner"),
    )


def assert_ridden_out(scenario: str, out: RiddenOut) -> None:
    """What a broker outage may cost, reported and checked the same way for every outage."""
    report(scenario, out.figures)
    print(f"faults | every consumer ready again after {out.ready_after_s} s")
    print(f"faults | successes when the broker was back: {out.successes_before}")
    assert out.resumed["successes"] > out.successes_before
    assert out.mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert out.figures.lost == 0
    # Deliveries unacked when the broker went away come again: at most the senders' prefetch.
    assert out.figures.duplicate_successes <= 2 * PREFETCH
    assert out.work_left == 0
    assert out.tracebacks == [], "a broker restart is an expected fault: no traceback"


def restart_app() -> None:
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


async def test_rabbitmq_app_restarted_while_senders_send(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        run_id, mailing_id = await scene.mailing_under_way(
            CLIENTS, behaviour={"latency_ms": LATENCY_MS}, successes=300
        )

        out = await ride_out(
            scene, run_id, mailing_id, lambda: rabbitmqctl("stop_app"), restart_app
        )

    assert_ridden_out("RabbitMQ stop_app / start_app while sending", out)


async def test_rabbitmq_node_stopped_and_started_while_the_planner_dispatches(
    staged: Staging,
) -> None:
    shape = Shape(
        senders=2,
        settings={
            "MAILER_SENDER_PREFETCH": str(PREFETCH),
            "MAILER_PLANNER_DISPATCH_BATCH_SIZE": "100",
            "MAILER_PLANNER_BATCHES_PER_TICK": "1",
            # The planner dispatches as the senders take work, so it is still dispatching
            # when the node goes, and the slow stub leaves them work for after its return.
            "MAILER_PLANNER_WORK_QUEUE_MAX": "100",
        },
    )
    async with staged(shape) as scene:
        run_id, mailing_id = await scene.mailing_under_way(
            CLIENTS, behaviour={"latency_ms": LATENCY_MS}, requests=100
        )

        out = await ride_out(
            scene, run_id, mailing_id, lambda: rabbitmqctl("stop"), start_rabbitmq_node
        )

    # The same bound: besides what the senders had in flight, a dispatch publish whose
    # confirm the outage swallowed leaves its row pending, and that copy is skipped once the
    # message is dispatched again.
    assert_ridden_out("RabbitMQ node stopped and started while dispatching", out)


async def test_a_sender_and_the_status_service_stopped_while_the_broker_is_away(
    staged: Staging,
) -> None:
    shape = Shape(
        senders=2,
        settings={
            "MAILER_SENDER_PREFETCH": str(PREFETCH),
            "MAILER_SENDER_STOP_TIMEOUT_S": str(SENDER_STOP_TIMEOUT_S),
        },
    )
    async with staged(shape) as scene:
        sender = await scene.stack.start("sender-3", "sender", SENDER_LAYER)
        status = await scene.stack.start("status-2", "status", STATUS_LAYER)
        run_id, mailing_id = await scene.mailing_under_way(
            CLIENTS, behaviour={"latency_ms": LATENCY_MS}, successes=300
        )

        rabbitmqctl("stop_app")
        try:
            exits = await asyncio.gather(*(timed_stop(scene, c) for c in (sender, status)))
        finally:
            restart_app()
        back_at = time.time()
        await scene.still_sending(CLIENTS, "when the broker was back")
        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id, back_at)

    report("a sender and the status service stopped while RabbitMQ is away", figures)
    print(f"faults | exit codes and seconds from SIGTERM, sender and status: {exits}")
    assert [code for code, _ in exits] == [0, 0], "a stop during an outage is a clean stop"
    assert all(seconds <= STOPPED_WITHIN_S for _, seconds in exits), exits
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == 0
    # What the three senders had in flight when the broker went away.
    assert figures.duplicate_successes <= 3 * PREFETCH


async def timed_stop(scene: Scene, child: Child) -> tuple[int, float]:
    """SIGTERM ``child`` as the stack would; its exit code and how long it took."""
    started = time.monotonic()
    code = await scene.stack.stop(child)
    return code, round(time.monotonic() - started, 2)
