"""RabbitMQ stopped and started again while senders send: consumers come back, nothing is lost."""

import asyncio
import shutil
import subprocess
import time

from tests.conftest import _rabbitmqctl
from tests.e2e.helpers import work_in_broker
from tests.e2e.stack import Shape
from tests.faults.checks import judge, report, tracebacks
from tests.faults.conftest import Staging
from tests.waiting import eventually

CLIENTS = 1_500
OUTAGE_S = 5.0
BACK_WITHIN_S = 30.0  # the bound for consumers to return after a restart
SETTLE_S = 120.0
SHAPE = Shape(senders=2, settings={"MAILER_SENDER_PREFETCH": "50"})
NODE_BOOT_S = 90.0


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


async def test_rabbitmq_app_restarted_while_senders_send(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        run_id, mailing_id = await scene.mailing_under_way(
            CLIENTS, behaviour={"latency_ms": 50}, successes=300
        )

        rabbitmqctl("stop_app")
        try:
            await asyncio.sleep(OUTAGE_S)
        finally:
            rabbitmqctl("start_app")
            rabbitmqctl("await_startup")
        back_at = time.time()
        before = (await scene.stub.summary())["successes"]
        resumed = await eventually(
            scene.stub.summary, lambda summary: summary["successes"] > before, BACK_WITHIN_S
        )
        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id, back_at)
        left = await work_in_broker(scene.stack.vhost_url)
        errors = tracebacks(scene, "sender-1", "sender-2", "status", "planner")

    report("RabbitMQ stop_app / start_app while sending", figures)
    assert resumed["successes"] > before
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == 0
    # Deliveries unacked when the broker went away come again: at most the senders' prefetch.
    assert figures.duplicate_successes <= 2 * 50
    assert left == 0
    assert errors == [], "a broker restart is an expected fault: no traceback"


async def test_rabbitmq_node_stopped_and_started_while_the_planner_dispatches(
    staged: Staging,
) -> None:
    shape = Shape(
        senders=2,
        settings={
            "MAILER_SENDER_PREFETCH": "50",
            "MAILER_PLANNER_DISPATCH_BATCH_SIZE": "100",
            "MAILER_PLANNER_BATCHES_PER_TICK": "1",
        },
    )
    async with staged(shape) as scene:
        run_id, mailing_id = await scene.mailing_under_way(
            CLIENTS, behaviour={"latency_ms": 50}, requests=100
        )

        rabbitmqctl("stop")
        try:
            await asyncio.sleep(OUTAGE_S)
        finally:
            start_rabbitmq_node()
        back_at = time.time()
        before = (await scene.stub.summary())["successes"]
        resumed = await eventually(
            scene.stub.summary, lambda summary: summary["successes"] > before, BACK_WITHIN_S
        )
        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id, back_at)
        left = await work_in_broker(scene.stack.vhost_url)
        errors = tracebacks(scene, "sender-1", "sender-2", "status", "planner")

    report("RabbitMQ node stopped and started while dispatching", figures)
    assert resumed["successes"] > before
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == 0
    # In flight at the senders, plus one dispatch batch published but not marked queued.
    assert figures.duplicate_successes <= 2 * 50 + 100
    assert left == 0
    assert errors == [], "a broker restart is an expected fault: no traceback"
