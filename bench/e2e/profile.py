"""``--profile``: py-spy samples every Python service over the mailing; where each one's time goes.

py-spy reads a process's stacks from outside (ptrace), so the services run unchanged; it
records only samples in which a thread was running, so shares are of the time the process was
busy. The samplers take CPU of their own on a machine of two cores: a profiled run is for
finding the costs, not for the headline figures. Raw stacks (flamegraph's collapsed format)
stay in the results directory for ``flamegraph.pl`` or speedscope.
"""

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

RATE_HZ = 50
STOP_TIMEOUT_S = 30.0
TOP = 8
# A thread in epoll_wait has released the GIL and is waiting, yet py-spy may still count it
# active: the event loop's wait is left out, so shares are of time spent working.
_WAITING = frozenset({"selectors"})
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::\d+)?\)$")
# Where a frame's file lives decides its package: a library, the standard library, or ours.
_ROOTS = ("/site-packages/", f"/lib/python{sys.version_info.major}.{sys.version_info.minor}/")


def py_spy() -> str:
    """The py-spy executable, next to this interpreter or on PATH."""
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


class Profiler:
    """One ``py-spy record`` per service, from :meth:`start` to :meth:`stop`."""

    def __init__(self, pids: dict[str, int], directory: Path, prefix: str) -> None:
        self._pids = pids
        self._paths = {name: directory / f"{prefix}-{name}.stacks.txt" for name in pids}
        self._samplers: dict[str, asyncio.subprocess.Process] = {}

    async def start(self) -> None:
        executable = py_spy()
        for name, pid in self._pids.items():
            self._samplers[name] = await asyncio.create_subprocess_exec(
                executable, "record", "--pid", str(pid), "--rate", str(RATE_HZ),
                "--format", "raw", "--output", str(self._paths[name]), "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip

    async def stop(self) -> dict[str, dict[str, Any]]:
        """Stop every sampler (SIGINT makes py-spy write its file); each service's summary."""
        for sampler in self._samplers.values():
            with suppress(ProcessLookupError):
                sampler.send_signal(signal.SIGINT)
        for sampler in self._samplers.values():
            try:
                await asyncio.wait_for(sampler.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                sampler.kill()
                await sampler.wait()
        return {
            name: summarize(path.read_text()) | {"stacks": str(path)}
            for name, path in self._paths.items()
            if path.exists()
        }


def summarize(collapsed: str) -> dict[str, Any]:
    """Self time by package and by function, as shares of the busy samples, highest first."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        function, package = _frame(stack.rsplit(";", 1)[-1])
        if package in _WAITING:
            continue
        samples += count
        by_function[function] += count
        by_package[package] += count
    return {
        "samples": samples,
        "by_package": _shares(by_package, samples),
        "top_functions": _shares(by_function, samples),
    }


def _frame(frame: str) -> tuple[str, str]:
    """``("function (module path)", "package")`` of one collapsed frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, frame
    path = match["path"]
    for root in _ROOTS:
        if root in path:
            path = path.rsplit(root, 1)[1]
            break
    else:
        for ours in ("/services/", "/shared/", "/bench/"):
            if ours in path:
                path = ours.strip("/") + "/" + path.rsplit(ours, 1)[1]
                break
    package = path.split("/", 1)[0].removesuffix(".py")
    if package in ("services", "shared") and "/" in path:
        package = "/".join(path.split("/")[:2]).removesuffix(".py")
    return f"{match['function']} ({path})", package


def _shares(counts: Counter[str], samples: int) -> list[tuple[str, float]]:
    if not samples:
        return []
    return [(name, round(count / samples, 3)) for name, count in counts.most_common(TOP)]
