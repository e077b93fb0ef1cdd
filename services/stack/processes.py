"""Child processes of the local stack: start them, prefix their output, stop them in order.

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches only the
supervising process, which then stops the children in the order their dependencies need
(senders before the stub they call, the status writer after the senders that feed it).
"""

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from services.stack.errors import ChildExited, StopRequested

T = TypeVar("T")

Write = Callable[[str], None]
"""Where prefixed lines go: one call per line, without the newline."""

LINE_LIMIT_BYTES = 1 << 20
"""Longest output line passed on whole; a longer one is cut to about this length."""


@dataclass(frozen=True)
class ChildSpec:
    """One process to run: its name in the output, its command line and its environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    """The whole environment of the child; None inherits this process's."""
    layer: int = 0
    """Children start in ascending layers and stop in descending ones: a child stops before
    the children it depends on."""


@dataclass
class Child:
    """A started child; ``ended`` finishes once its output is read and its exit code known."""

    spec: ChildSpec
    process: asyncio.subprocess.Process
    watched: bool
    ended: asyncio.Task[int] = field(init=False)

    @property
    def exit_code(self) -> int | None:
        return self.process.returncode


class Supervisor:
    """Runs children, writes their output as ``name | line``, notices deaths, stops them.

    Create it inside the running event loop.
    """

    def __init__(
        self, write: Write, *, own_name: str = "stack", name_width: int = 8, stop_timeout_s: float
    ) -> None:
        self._write = write
        self._own_name = own_name
        self._width = max(name_width, len(own_name))
        self._stop_timeout_s = stop_timeout_s
        self.children: list[Child] = []
        loop = asyncio.get_running_loop()
        self._died: asyncio.Future[Child] = loop.create_future()
        self._stop_requested: asyncio.Future[None] = loop.create_future()
        self._stopping = False

    def say(self, text: str) -> None:
        """A line of the supervisor's own, prefixed with its name."""
        self._line(self._own_name, text)

    async def start(self, spec: ChildSpec, *, watched: bool = True) -> Child:
        """Start ``spec``; if ``watched``, its exit before :meth:`stop` counts as a death."""
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            env=None if spec.env is None else dict(spec.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            limit=LINE_LIMIT_BYTES,
        )
        child = Child(spec, process, watched)
        child.ended = asyncio.create_task(self._follow(child), name=f"follow-{spec.name}")
        self.children.append(child)
        return child

    async def run(self, spec: ChildSpec) -> int:
        """Run a one-shot child (such as migrations) to its end; its exit code."""
        child = await self.start(spec, watched=False)
        return await self.guard(asyncio.shield(child.ended))

    async def guard(self, work: Awaitable[T]) -> T:
        """The result of ``work``, unless a watched child dies or a stop is requested first.

        Raises :class:`ChildExited` or :class:`StopRequested` then, after cancelling ``work``.
        """
        task = asyncio.ensure_future(work)
        watched: list[asyncio.Future[Any]] = [task, self._died, self._stop_requested]
        try:
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        # A death explains a failure of the work better than the work's own error does.
        if self._died.done():
            child = self._died.result()
            raise ChildExited(child.spec.name, child.exit_code)
        if self._stop_requested.done():
            raise StopRequested
        return task.result()  # the work failed on its own: its exception

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.done()

    def request_stop(self) -> None:
        """Make every :meth:`guard` raise :class:`StopRequested` (a signal handler calls it)."""
        if not self._stop_requested.done():
            self._stop_requested.set_result(None)

    async def stop(self) -> dict[str, int | None]:
        """Stop every child, a layer at a time from the top: SIGTERM, then SIGKILL on timeout.

        Returns each child's exit code by name.
        """
        self._stopping = True
        try:
            for layer in sorted({child.spec.layer for child in self.children}, reverse=True):
                members = [child for child in self.children if child.spec.layer == layer]
                await asyncio.gather(*(self._stop_one(child) for child in members))
        except asyncio.CancelledError:
            self.kill_all()
            raise
        return {child.spec.name: child.exit_code for child in self.children}

    def kill_all(self) -> None:
        """SIGKILL every child still running (a second Ctrl-C calls it)."""
        self._stopping = True
        for child in self.children:
            if child.exit_code is None:
                _kill(child)

    async def _stop_one(self, child: Child) -> None:
        running = child.exit_code is None  # else it ended before, and was reported then
        if running:
            with suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(child.ended), self._stop_timeout_s)
        except TimeoutError:
            self.say(f"{child.spec.name} did not stop within {self._stop_timeout_s:g} s: killed")
            _kill(child)
            await child.ended
            return
        # uvicorn re-raises SIGTERM once it has shut down cleanly, so -SIGTERM is a clean stop too.
        if running and child.exit_code not in (0, -signal.SIGTERM):
            self.say(f"{child.spec.name} stopped with exit code {child.exit_code}")

    async def _follow(self, child: Child) -> int:
        stream = child.process.stdout
        if stream is not None:
            await self._pump(child.spec.name, stream)
        exit_code = await child.process.wait()
        if child.watched and not self._stopping:
            self.say(f"{child.spec.name} exited unexpectedly with code {exit_code}")
            if not self._died.done():
                self._died.set_result(child)
        return exit_code

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        cut = False  # skipping the rest of a line already shown cut short
        while True:
            try:
                raw = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:  # the end, perhaps after a last line
                raw = exc.partial
                if not raw:
                    return
            except asyncio.LimitOverrunError as exc:  # nothing read yet: show the head
                head = (await stream.read(exc.consumed))[:LINE_LIMIT_BYTES]
                if not cut:
                    self._line(name, f"{_decode(head)} [line cut: over {LINE_LIMIT_BYTES} bytes]")
                cut = True
                continue
            if not cut:
                self._line(name, _decode(raw))
            cut = False

    def _line(self, name: str, text: str) -> None:
        try:
            self._write(f"{name:<{self._width}} | {text}")
        except (OSError, ValueError):
            # The terminal or the file went away (a closed pipe, a full disk): keep supervising
            # without output rather than leave the children unstopped.
            self._write = _discard


def _discard(_line: str) -> None:
    pass


def _decode(raw: bytes) -> str:
    return raw.decode(errors="replace").rstrip("\r\n")


def _kill(child: Child) -> None:
    # The child leads a process group of its own (start_new_session): kill the group, so that
    # nothing it started is left behind holding the output pipe open.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signal.SIGKILL)
