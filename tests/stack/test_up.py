"""``mailer up`` as a process: the whole stack delivers a mailing, then stops on SIGTERM."""

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.stack.network import free_port, wait_ready
from tests.stack.helpers import wait_until

MAILER = Path(sys.executable).with_name("mailer")
API_TOKEN = "stack-up-test-api-token-0123"
CLIENTS = 20


@dataclass
class Up:
    """A running ``mailer up`` and every line it has written so far."""

    process: asyncio.subprocess.Process
    api_url: str
    stub_url: str
    lines: list[str] = field(default_factory=list)

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode().rstrip("\n"))


@pytest.fixture
async def up(
    engine: AsyncEngine, database_url: str, vhost_url: str, tmp_path: Path
) -> AsyncIterator[Up]:
    api_port, stub_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        *[str(MAILER), "up", "--senders", "2"],
        *["--api-port", str(api_port), "--stub-port", str(stub_port)],
        cwd=tmp_path,  # no .env here
        env={
            "PATH": os.environ.get("PATH", ""),
            "MAILER_DATABASE_URL": database_url,
            "MAILER_RABBITMQ_URL": vhost_url,
            "MAILER_API_TOKEN": API_TOKEN,
            "MAILER_PLANNER_TICK_INTERVAL_S": "0.2",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = Up(process, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{stub_port}")
    reader = asyncio.create_task(running.read())  # a full pipe would block every service
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader


async def _mailing_to_everyone(api: httpx.AsyncClient) -> int:
    for n in range(CLIENTS):
        response = await api.post("/api/v1/clients", json={"phone": f"7900555{n:04d}"})
        assert response.status_code == 201, response.text
    now = datetime.now(UTC)
    body = {
        "start_at": now.isoformat(),
        "end_at": (now + timedelta(minutes=5)).isoformat(),
        "text": 'Скидка «20 %» — "сегодня" 🎉',
    }
    response = await api.post("/api/v1/mailings", json=body)
    assert response.status_code == 201, response.text
    mailing_id: int = response.json()["id"]
    return mailing_id


async def _finished(api: httpx.AsyncClient, mailing_id: int) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def poll() -> bool:
        response = await api.get(f"/api/v1/mailings/{mailing_id}")
        found.update(response.json())
        return bool(found["status"] == "finished")

    deadline = asyncio.get_running_loop().time() + 60
    while not await poll():
        assert asyncio.get_running_loop().time() < deadline, f"not finished in 60 s: {found}"
        await asyncio.sleep(0.2)
    return found


async def _messages(api: httpx.AsyncClient, mailing_id: int) -> dict[int, str]:
    response = await api.get(f"/api/v1/mailings/{mailing_id}/messages", params={"limit": 500})
    assert response.status_code == 200, response.text
    return {message["id"]: message["status"] for message in response.json()["items"]}


async def _readiness_urls(up: Up) -> dict[str, str]:
    """The ``/readyz`` URL of each service without an API of its own, from the ready line."""
    await wait_until(lambda: any(line.startswith("up       | ready:") for line in up.lines), 60)
    [ready] = [line for line in up.lines if line.startswith("up       | ready:")]
    named = re.search(r"readiness at (.*?); Ctrl-C", ready)
    assert named is not None, ready
    return dict(pair.split(" ") for pair in named.group(1).split(", "))


async def test_up_delivers_every_message_once_and_stops_on_sigterm(up: Up) -> None:
    await wait_ready("the API", f"{up.api_url}/readyz", timeout_s=60)
    readiness = await _readiness_urls(up)
    async with httpx.AsyncClient(timeout=10) as probe:
        answers = {name: (await probe.get(url)).status_code for name, url in readiness.items()}
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=up.api_url, headers=auth, timeout=10) as api:
        mailing_id = await _mailing_to_everyone(api)
        mailing = await _finished(api, mailing_id)
        messages = await _messages(api, mailing_id)
    async with httpx.AsyncClient(base_url=up.stub_url, timeout=10) as stub:
        journal = (await stub.get("/_stub/journal")).json()
        summary = (await stub.get("/_stub/summary")).json()

    up.process.send_signal(signal.SIGTERM)
    exit_code = await asyncio.wait_for(up.process.wait(), timeout=60)

    log = "\n".join(up.lines)
    assert answers == dict.fromkeys(("status", "sender-1", "sender-2", "planner"), 200), log
    assert mailing["stats"]["total"] == CLIENTS
    assert len(messages) == CLIENTS
    assert set(messages.values()) == {"sent"}, log
    successes = Counter(
        entry["msg_id"]
        for entry in journal
        if entry["outcome"] == "ok" and not entry["client_disconnected"]
    )
    assert successes == dict.fromkeys(messages, 1), "exactly one success per msgId"
    assert (summary["successes"], summary["duplicate_successes"]) == (CLIENTS, 0)
    assert exit_code == 0, log
    await wait_until(lambda: up.lines[-1:] == ["up       | stopped"], timeout_s=5)
    for name in ("migrate", "api", "planner", "sender-1", "sender-2", "status", "stub"):
        assert any(line.startswith(f"{name:<8} | {{") for line in up.lines), name
    assert API_TOKEN not in log
