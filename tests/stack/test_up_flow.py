"""What ``mailer up`` does around its services, with stand-ins for them: start, fail, stop."""

import asyncio
import os
import signal

from services.stack.network import free_port
from services.stack.processes import ChildSpec
from services.stack.up import StackPlan, _up
from tests.stack.helpers import GRACEFUL, HEALTHY, PYTHON, child, wait_until


def stand_in_plan(*workers: ChildSpec, migrate: str = "print('migrated')") -> StackPlan:
    port = free_port()
    return StackPlan(
        migrate=child("migrate", migrate),
        services=(ChildSpec("api", [*PYTHON, HEALTHY, str(port)], layer=3), *workers),
        api_url=f"http://127.0.0.1:{port}",
        stub_url=None,
        ready_timeout_s=10,
        stop_timeout_s=5,
    )


async def test_a_service_dying_stops_the_rest_and_fails() -> None:
    lines: list[str] = []
    plan = stand_in_plan(child("sender-1", "import time; time.sleep(1); raise SystemExit(4)", 2))

    exit_code = await asyncio.wait_for(_up(plan, lines.append), timeout=30)

    assert exit_code == 1
    assert "up       | sender-1 exited unexpectedly with code 4" in lines
    assert (
        lines[-1] == "up       | stopped after an error: sender-1 exited unexpectedly with code 4"
    )


async def test_failed_migrations_start_nothing() -> None:
    lines: list[str] = []
    plan = stand_in_plan(migrate="print('no database'); raise SystemExit(1)")

    exit_code = await asyncio.wait_for(_up(plan, lines.append), timeout=30)

    assert exit_code == 1
    assert lines == [  # "migrate" is the longest name here
        "migrate | no database",
        "up      | stopped after an error: migrations failed with exit code 1; see migrate's lines",
    ]


async def test_sigterm_stops_every_service_and_exits_cleanly() -> None:
    lines: list[str] = []
    plan = stand_in_plan(child("status", GRACEFUL, 1))
    running = asyncio.create_task(_up(plan, lines.append))
    await wait_until(lambda: any(line.startswith("up      | ready:") for line in lines))
    await wait_until(lambda: "status  | ready" in lines)

    os.kill(os.getpid(), signal.SIGTERM)  # the handler is this loop's while _up runs
    exit_code = await asyncio.wait_for(running, timeout=30)

    assert exit_code == 0
    assert "status  | stopping" in lines
    assert lines[-1] == "up      | stopped"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone again
