"""Real services (``mailer api``, ``mailer stub``) as child processes on free ports."""

import asyncio
import os
import signal
import socket
import sys
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import STDOUT

import httpx

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0


def free_port() -> int:
    # The port may be taken again between close and bind; a clash shows up as a failed start.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def running_api(database_url: str, token: str, log_path: Path) -> AsyncIterator[str]:
    """Start the API, wait for ``/healthz``, yield its base URL; always stop it afterwards."""
    port = free_port()
    env = {"MAILER_DATABASE_URL": database_url, "MAILER_API_TOKEN": token}
    env["MAILER_API_PORT"] = str(port)
    async with running_service(["api"], env, port, log_path) as (base_url, _process):
        yield base_url


@asynccontextmanager
async def running_service(
    args: list[str], env: dict[str, str], port: int, log_path: Path, prefix: Sequence[str] = ()
) -> AsyncIterator[tuple[str, Process]]:
    """Start ``mailer *args`` (after ``prefix``, e.g. taskset), wait for its ``/healthz`` on
    ``port``, yield its base URL and process; always stop it afterwards."""
    # The venv's console script, next to the interpreter running this benchmark.
    mailer = Path(sys.executable).with_name("mailer")
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *prefix, mailer, *args, env={**os.environ, **env}, stdout=log, stderr=STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            await _wait_healthy(process, base_url, log_path)
            yield base_url, process
        finally:
            await _stop(process)


async def _wait_healthy(process: Process, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url, timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"mailer exited with {process.returncode}; see {log_path}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"mailer not healthy after {STARTUP_TIMEOUT_S} s; see {log_path}")


async def _stop(process: Process) -> None:
    if process.returncode is not None:
        return
    # SIGTERM lets a service finish cleanly (the API disposes its engine); kill only if stuck.
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), SHUTDOWN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
