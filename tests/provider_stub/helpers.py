"""A stub served in-process, and what the tests need to talk to it."""

import socket
from datetime import datetime
from typing import Any, TypeVar

import httpx
from aiohttp import web

from services.provider_stub.app import start
from services.provider_stub.settings import StubSettings
from tests.waiting import eventually

TOKEN = "stub-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHONE = 79001234567
# The global behaviour every test starts from (SPEC §4.1's defaults).
DEFAULT_BEHAVIOUR: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "error_status": 503,
    "hang_rate": 0.0,
    "malformed_rate": 0.0,
    "drop_rate": 0.0,
}

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stub_settings(port: int, *, journal_size: int = 1000, hang_max_s: float = 30.0) -> StubSettings:
    """Settings that ignore the environment and ``.env``: every field is given here."""
    # stub_token is read through its aliases only: ``stub_token=`` would be ignored.
    return StubSettings(
        MAILER_STUB_TOKEN=TOKEN,
        stub_host="127.0.0.1",
        stub_port=port,
        stub_journal_size=journal_size,
        stub_hang_max_s=hang_max_s,
        _env_file=None,
    )


async def serve(*, journal_size: int = 1000, hang_max_s: float = 30.0) -> tuple[web.AppRunner, str]:
    """A stub on a free port, and its base URL; ``await runner.cleanup()`` stops it."""
    port = free_port()
    runner = await start(stub_settings(port, journal_size=journal_size, hang_max_s=hang_max_s))
    return runner, f"http://127.0.0.1:{port}"


def message(msg_id: int, text: str = "Hello") -> dict[str, Any]:
    """The body a sender posts for ``msg_id``."""
    return {"id": msg_id, "phone": PHONE, "text": text}


async def send(
    client: httpx.AsyncClient,
    msg_id: int | str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
) -> httpx.Response:
    """``POST /v1/send/{msg_id}`` as a sender does; the body defaults to the right one."""
    if body is None:
        body = message(int(msg_id))
    return await client.post(
        f"/v1/send/{msg_id}",
        json=body,
        headers=AUTH if headers is None else headers,
        timeout=timeout_s,
    )


def instant(iso: str) -> datetime:
    """A journal timestamp, which must carry an offset."""
    value = datetime.fromisoformat(iso)
    assert value.tzinfo is not None, iso
    return value


class Stub:
    """The control API (``/_stub/*``) of one running stub."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def reset(self) -> None:
        """Empty journal, no scripts, the default behaviour and token."""
        response = await self.client.delete("/_stub/journal")
        assert response.status_code == 204, response.text
        await self.behaviour(**DEFAULT_BEHAVIOUR, token=TOKEN)

    async def behaviour(self, **patch: Any) -> dict[str, Any]:
        response = await self.client.put("/_stub/behaviour", json=patch)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def script(self, msg_id: int, outcomes: list[str]) -> None:
        response = await self.client.put(f"/_stub/script/{msg_id}", json=outcomes)
        assert response.status_code == 200, response.text

    async def journal(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get("/_stub/journal", params=params)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()
        return entries

    async def summary(self) -> dict[str, Any]:
        response = await self.client.get("/_stub/summary")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def only_entry(self) -> dict[str, Any]:
        entries = await self.journal()
        assert len(entries) == 1, entries
        return entries[0]

    async def settled_entry(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The one journal entry, once the stub has recorded how its request ended."""
        entries = await eventually(
            self.journal, lambda found: len(found) == 1 and found[0]["outcome"] != "", timeout_s
        )
        return entries[0]
