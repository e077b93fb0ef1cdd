"""What every long-running service does the same way around its own work."""

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a service's main coroutine to its end on uvloop.

    The services spend a third to a half of their CPU in the event loop itself (socket
    writes, callbacks: py-spy, bench S1); uvloop's loop does the same work in C.
    """
    return uvloop.run(main)


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGINT or SIGTERM; call it inside the running loop.

    Services stop gracefully on it (finish in-flight work, flush, close); a second signal
    finds the handler already set and changes nothing, so the orchestrator's kill decides.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
