"""Throughput and memory of the provider stub (``mailer stub``) under load from wrk.

The stub runs pinned to one core and wrk to the other, so the figure is what one core of the
stub serves. Every request carries a new msgId, so the journal fills to its bound and the
per-id bitmaps grow as they would over a real mailing; the run goes on until the stub has
answered ``--requests`` requests, then reads its peak RSS from ``/proc``.

Usage::

    .venv/bin/python -m bench.stub_throughput                    # 1,000,000 requests
    .venv/bin/python -m bench.stub_throughput --requests 200000 --connections 100

Needs ``wrk`` (Debian: ``apt-get install wrk``) and, for pinning, ``taskset``. Prints a table
and writes ``bench/results/stub_throughput.json``.
"""

import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from bench.processes import free_port, running_service

RESULTS_DIR = Path(__file__).parent / "results"
TOKEN = "bench-stub-token-5a7c"
CHUNK_S = 10

# Each wrk run starts its msgIds after the previous run's, passed as the script's argument.
WRK_SCRIPT = """
local next_id = 0
function init(args) next_id = tonumber(args[1]) end
function request()
  next_id = next_id + 1
  local body = '{"id": ' .. next_id
    .. ', "phone": 79161234567, "text": "Spring sale: -20%% until Sunday"}'
  return wrk.format("POST", "/v1/send/" .. next_id,
    {["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"}, body)
end
"""

console = Console(width=100)


def _pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and os.cpu_count() else []


def _proc_status_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _run_wrk(url: str, script: Path, connections: int, first_id: int) -> tuple[int, float]:
    """One wrk run of CHUNK_S seconds; returns (requests, requests per second)."""
    command = [
        *_pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{CHUNK_S}s", "-s", str(script),
        url, "--", str(first_id),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    total = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not total or not rate:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return int(total.group(1)), float(rate.group(1))


async def measure(target: int, connections: int) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise typer.BadParameter("wrk is not installed (apt-get install wrk)")
    RESULTS_DIR.mkdir(exist_ok=True)
    port = free_port()
    env = {"MAILER_STUB_TOKEN": TOKEN, "MAILER_STUB_PORT": str(port), "MAILER_LOG_LEVEL": "WARNING"}
    log_path = RESULTS_DIR / "stub_throughput.stub.log"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "send.lua"
        script.write_text(WRK_SCRIPT % TOKEN)
        async with running_service(["stub"], env, port, log_path, _pinned(0)) as (url, process):
            rss_start_kib = _proc_status_kib(process.pid, "VmRSS")
            rates: list[float] = []
            async with httpx.AsyncClient(base_url=url) as client:
                summary = (await client.get("/_stub/summary")).json()
                while summary["requests"] < target:
                    # The stub's count, not wrk's, starts the next run's ids: wrk leaves out
                    # requests still in flight when it stops, and reusing their ids would
                    # show up as duplicate successes.
                    first_id = summary["requests"]
                    _, rate = await asyncio.to_thread(_run_wrk, url, script, connections, first_id)
                    rates.append(rate)
                    summary = (await client.get("/_stub/summary")).json()
                    console.print(f"  {summary['requests']:>10,} requests, {rate:,.0f}/s")
            return {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "connections": connections,
                "requests": summary["requests"],
                "requests_per_s_mean": round(sum(rates) / len(rates)),
                "requests_per_s_min": round(min(rates)),
                "rss_start_mib": round(rss_start_kib / 1024, 1),
                "rss_end_mib": round(_proc_status_kib(process.pid, "VmRSS") / 1024, 1),
                "rss_peak_mib": round(_proc_status_kib(process.pid, "VmHWM") / 1024, 1),
                "summary": summary,
            }


def main(
    requests: Annotated[int, typer.Option(help="Stop once the stub has answered this many.")] = (
        1_000_000
    ),
    connections: Annotated[int, typer.Option(help="Concurrent connections from wrk.")] = 64,
) -> None:
    """Load the stub with wrk until it has answered --requests; print and save the figures."""
    figures = asyncio.run(measure(requests, connections))
    table = Table(title="provider stub, one core, zero latency")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("requests", "requests_per_s_mean", "requests_per_s_min", "rss_start_mib",
                "rss_end_mib", "rss_peak_mib"):  # fmt: skip
        table.add_row(key, f"{figures[key]:,}")
    console.print(table)
    (RESULTS_DIR / "stub_throughput.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    typer.run(main)
