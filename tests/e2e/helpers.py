"""What the end-to-end tests see of the stack: its REST API, the stub's control API, SQL."""

import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aio_pika
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.stack.demo import TEXT
from services.stack.seed import DemoClient, copy_clients, demo_clients, demo_tags
from shared import topology
from tests.provider_stub.helpers import DEFAULT_BEHAVIOUR
from tests.waiting import eventually

T = TypeVar("T")
UNFINISHED = ("pending", "queued")
POLL_INTERVAL_S = 0.1


def instant(iso: str) -> float:
    """An ISO 8601 timestamp with an offset, as seconds since the epoch."""
    return datetime.fromisoformat(iso).timestamp()


class Api:
    """The stack's REST API, as an operator calls it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def create_mailing(
        self,
        run_id: str,
        *,
        start_in_s: float = 0.0,
        end_in_s: float = 600.0,
        send_window: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A mailing to the clients seeded for ``run_id``; with ``send_window`` if given."""
        now = datetime.now(UTC)
        body: dict[str, Any] = {
            "start_at": (now + timedelta(seconds=start_in_s)).isoformat(),
            "end_at": (now + timedelta(seconds=end_in_s)).isoformat(),
            "text": TEXT,
            "filter": {"tags": demo_tags(run_id)},
        }
        if send_window is not None:
            body["send_window"] = send_window
        return await self._json("POST", "/api/v1/mailings", httpx.codes.CREATED, json=body)

    async def create_client(self, phone: str, tag: str, timezone: str) -> dict[str, Any]:
        body = {"phone": phone, "tag": tag, "timezone": timezone}
        return await self._json("POST", "/api/v1/clients", httpx.codes.CREATED, json=body)

    async def mailing(self, mailing_id: int) -> dict[str, Any]:
        return await self._json("GET", f"/api/v1/mailings/{mailing_id}")

    async def cancel(self, mailing_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/api/v1/mailings/{mailing_id}/cancel")

    async def stats(self) -> dict[str, Any]:
        return await self._json("GET", "/api/v1/stats")

    async def messages(self, mailing_id: int) -> list[dict[str, Any]]:
        """Every message of the mailing, page after page."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 500}
        while True:
            page = await self._json("GET", f"/api/v1/mailings/{mailing_id}/messages", params=params)
            found += page["items"]
            if page["next_cursor"] is None:
                return found
            params["cursor"] = page["next_cursor"]

    async def settled(self, mailing_id: int, timeout_s: float) -> dict[str, Any]:
        """The mailing once none of its messages is pending or queued."""

        def done(mailing: dict[str, Any]) -> bool:
            stats = mailing["stats"]
            unfinished = sum(stats["by_status"][status] for status in UNFINISHED)
            return mailing["status"] != "scheduled" and stats["total"] > 0 and unfinished == 0

        return await eventually(lambda: self.mailing(mailing_id), done, timeout_s)

    async def reaches(self, mailing_id: int, status: str, timeout_s: float) -> dict[str, Any]:
        """The mailing once its status is ``status``."""
        return await eventually(
            lambda: self.mailing(mailing_id), lambda found: found["status"] == status, timeout_s
        )

    async def _json(
        self, method: str, path: str, expected: int = httpx.codes.OK, **kwargs: Any
    ) -> dict[str, Any]:
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code == expected, f"{method} {path}: {response.text}"
        body: dict[str, Any] = response.json()
        return body


class Stub:
    """The provider stub's control API."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def reset(self) -> None:
        """An empty journal, no scripts and the default behaviour."""
        (await self.client.delete("/_stub/journal")).raise_for_status()
        await self.behave(**DEFAULT_BEHAVIOUR)

    async def behave(self, **changes: Any) -> None:
        (await self.client.put("/_stub/behaviour", json=changes)).raise_for_status()

    async def script(self, msg_id: int, outcomes: list[str]) -> None:
        (await self.client.put(f"/_stub/script/{msg_id}", json=outcomes)).raise_for_status()

    async def journal(self, msg_id: int | None = None) -> list[dict[str, Any]]:
        params = {} if msg_id is None else {"msg_id": msg_id}
        response = await self.client.get("/_stub/journal", params=params)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries

    async def summary(self) -> dict[str, Any]:
        response = await self.client.get("/_stub/summary")
        response.raise_for_status()
        summary: dict[str, Any] = response.json()
        return summary


def successes(journal: list[dict[str, Any]]) -> dict[int, int]:
    """Successes the sender received, by msgId."""
    counts: dict[int, int] = {}
    for entry in journal:
        if entry["outcome"] == "ok" and not entry["client_disconnected"]:
            counts[entry["msg_id"]] = counts.get(entry["msg_id"], 0) + 1
    return counts


async def seed(database_url: str, count: int) -> tuple[str, list[DemoClient]]:
    """``count`` new clients with tags of their own; the run id that names those tags."""
    run_id = secrets.token_hex(3)
    clients = demo_clients(count, run_id, random.Random())  # noqa: S311 - test data
    assert await copy_clients(database_url, clients) == count
    return run_id, clients


async def messages_per_client(engine: AsyncEngine, mailing_id: int) -> dict[int, int]:
    """How many Message rows each client has in the mailing, by SQL."""
    query = text(
        "SELECT client_id, count(*) AS n FROM messages WHERE mailing_id = :id GROUP BY client_id"
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query, {"id": mailing_id})).all()
    return {row.client_id: row.n for row in rows}


async def clients_matching(engine: AsyncEngine, run_id: str) -> set[int]:
    query = text("SELECT id FROM clients WHERE tag = ANY(:tags)")
    async with engine.connect() as connection:
        rows = (await connection.execute(query, {"tags": demo_tags(run_id)})).all()
    return {row.id for row in rows}


async def next_message_id(engine: AsyncEngine) -> int:
    """The id the next Message row will get (nothing else may insert meanwhile)."""
    query = text("SELECT last_value, is_called FROM messages_id_seq")
    async with engine.connect() as connection:
        row = (await connection.execute(query)).one()
    return int(row.last_value) + 1 if row.is_called else int(row.last_value)


async def work_in_broker(vhost_url: str) -> int:
    """Work messages waiting in RabbitMQ: in the work queue and in every retry queue."""
    names = [topology.WORK_QUEUE, *map(topology.retry_queue, topology.RETRY_DELAYS_S)]
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        channel = await connection.channel()
        total = 0
        for name in names:
            queue = await channel.declare_queue(name, passive=True)
            total += queue.declaration_result.message_count or 0
        return total
