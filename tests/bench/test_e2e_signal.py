"""Ctrl-C or SIGTERM during ``make bench``: the run stops, with its services, database and vhost."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.db import create_engine
from shared.settings import DatabaseSettings

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
STOP_TIMEOUT_S = 90


async def _bench_databases() -> set[str]:
    engine = create_engine(DatabaseSettings(database_url=ADMIN_URL, _env_file=None))
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE 'mailer_bench_%'")
            )
            return {row.datname for row in found}
    finally:
        await engine.dispose()


def _databases() -> set[str]:
    return asyncio.run(_bench_databases())


def _processes_of(database: str) -> list[int]:
    """Processes whose environment points at ``database``: the run's services."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if f"/{database}\0".encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_the_run_with_its_services_database_and_vhost(
    tmp_path: Path, signum: signal.Signals
) -> None:
    before = _databases()
    command = [
        sys.executable, "-m", "bench.e2e", "--scenario", "S1", "--clients", "200000",
        "--ceiling-messages", "0", "--results-dir", str(tmp_path), "--no-update-benchmarks",
        "--wait-quiet-s", "0",
    ]  # fmt: skip
    bench = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert bench.stdout is not None
    output = []
    for line in bench.stdout:
        output.append(line)
        if "stack ready" in line:
            break
    [database] = _databases() - before
    assert _processes_of(database), "the services run"

    bench.send_signal(signum)
    rest, _ = bench.communicate(timeout=STOP_TIMEOUT_S)

    assert bench.returncode == 1
    assert "S1 stopped by a signal" in "".join(output) + rest
    assert _processes_of(database) == []
    assert _databases() == before
    assert (tmp_path / "e2e-latest.md").exists()  # what was measured is still written
