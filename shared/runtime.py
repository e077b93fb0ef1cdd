"""What every long-running service does the same way around its own work."""

import asyncio
import signal


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
