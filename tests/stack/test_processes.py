"""The supervisor: prefixed output, deaths noticed, stops in layers, kills the stubborn."""

import asyncio
import signal

import pytest

from services.stack import processes
from services.stack.errors import ChildExited, StopRequested
from services.stack.processes import Supervisor
from tests.stack.helpers import GRACEFUL, STUBBORN, child, wait_until


def supervisor(lines: list[str], stop_timeout_s: float = 10.0) -> Supervisor:
    return Supervisor(lines.append, own_name="test", name_width=6, stop_timeout_s=stop_timeout_s)


async def test_every_line_of_stdout_and_stderr_carries_the_child_name() -> None:
    lines: list[str] = []
    code = "import sys; print('one'); print('two', file=sys.stderr); print('three\\r')"

    exit_code = await supervisor(lines).run(child("echo", code))

    assert exit_code == 0
    assert lines == ["echo   | one", "echo   | two", "echo   | three"]


async def test_a_line_over_the_limit_is_cut_and_the_next_one_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "LINE_LIMIT_BYTES", 100)
    lines: list[str] = []
    # Unbuffered, the long line arrives in two writes: its text, then its newline.
    code = "print('x' * 500); print('y' * 90 + '\\n' + 'z' * 300); print('after', end='')"

    await supervisor(lines).run(child("long", code))

    assert [line.replace("x" * 10, "X").replace("z" * 10, "Z") for line in lines] == [
        "long   | XXXXXXXXXX [line cut: over 100 bytes]",
        "long   | " + "y" * 90,
        "long   | ZZZZZZZZZZ [line cut: over 100 bytes]",
        "long   | after",
    ]


async def test_a_child_that_dies_ends_the_wait_and_is_reported() -> None:
    lines: list[str] = []
    stack = supervisor(lines)
    await stack.start(child("steady", GRACEFUL))
    await wait_until(lambda: "steady | ready" in lines)  # its SIGTERM handler is in place
    await stack.start(child("dying", "import sys; print('bye'); sys.exit(3)"))

    with pytest.raises(ChildExited) as raised:
        await asyncio.wait_for(stack.guard(asyncio.sleep(60)), timeout=10)
    codes = await stack.stop()

    assert (raised.value.name, raised.value.exit_code) == ("dying", 3)
    assert "dying  | bye" in lines
    assert "test   | dying exited unexpectedly with code 3" in lines
    assert codes == {"steady": 0, "dying": 3}


async def test_a_one_shot_child_ending_is_no_death() -> None:
    lines: list[str] = []
    stack = supervisor(lines)
    assert await stack.run(child("once", "print('done')")) == 0

    assert await stack.guard(asyncio.sleep(0.2, result="still fine")) == "still fine"


async def test_stop_sends_sigterm_to_the_top_layer_first() -> None:
    lines: list[str] = []
    stack = supervisor(lines)
    await stack.start(child("lower", GRACEFUL, layer=0))
    await stack.start(child("upper", GRACEFUL, layer=1))
    await wait_until(lambda: {"lower  | ready", "upper  | ready"} <= set(lines))

    codes = await stack.stop()

    assert codes == {"lower": 0, "upper": 0}
    assert lines.index("upper  | stopping") < lines.index("lower  | stopping")
    assert not [line for line in lines if line.startswith("test")]  # nothing to report


async def test_a_child_ignoring_sigterm_is_killed_after_the_timeout() -> None:
    lines: list[str] = []
    stack = supervisor(lines, stop_timeout_s=0.5)
    await stack.start(child("mule", STUBBORN))
    await wait_until(lambda: "mule   | ready" in lines)

    codes = await asyncio.wait_for(stack.stop(), timeout=10)

    assert codes == {"mule": -signal.SIGKILL}
    assert "test   | mule did not stop within 0.5 s: killed" in lines


async def test_a_stop_request_interrupts_the_wait() -> None:
    lines: list[str] = []
    stack = supervisor(lines)
    await stack.start(child("steady", GRACEFUL))
    await wait_until(lambda: "steady | ready" in lines)
    asyncio.get_running_loop().call_later(0.1, stack.request_stop)

    with pytest.raises(StopRequested):
        await asyncio.wait_for(stack.guard(asyncio.sleep(60)), timeout=10)

    assert stack.stop_requested
    assert await stack.stop() == {"steady": 0}
