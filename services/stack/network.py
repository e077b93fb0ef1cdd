"""Reaching the stack's HTTP services: free ports, addresses, readiness probes."""

import asyncio
import socket
import time

import httpx

from services.stack.errors import StartFailed

POLL_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 2.0


async def wait_ready(what: str, url: str, timeout_s: float) -> None:
    """Return once ``GET url`` answers 200; :class:`StartFailed` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == httpx.codes.OK:
                    return
                last = f"HTTP {response.status_code} {response.text[:200]}"
            await asyncio.sleep(POLL_INTERVAL_S)
    raise StartFailed(f"{what} at {url} was not ready within {timeout_s:g} s (last: {last})")


def reachable_host(host: str) -> str:
    """The address to reach a server that listens on ``host`` from this machine."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - listening everywhere; we connect locally
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may still take it first)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
