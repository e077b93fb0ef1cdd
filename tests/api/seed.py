"""Mailings through the API, clients and messages straight into the database.

Nothing sends messages yet, so tests that need messages write the rows the planner and the
status writer will write later, with plain SQL.
"""

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.statuses import MessageStatus

STATUSES = tuple(status.value for status in MessageStatus)
ZERO_COUNTS = dict.fromkeys(STATUSES, 0)

_phones = itertools.count()

Counts = dict[int, dict[str, int]]


def in_hours(hours: float) -> str:
    """An ISO 8601 timestamp (UTC) this many hours from now."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def create_mailing(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A mailing that starts in an hour and ends in two, unless ``fields`` say otherwise."""
    body = {"start_at": in_hours(1), "end_at": in_hours(2), "text": "hello", **fields}
    response = await api.post("/api/v1/mailings", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def set_mailing_status(engine: AsyncEngine, mailing_id: int, status: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE mailings SET status = :status WHERE id = :id"),
            {"status": status, "id": mailing_id},
        )


async def insert_clients(engine: AsyncEngine, count: int) -> list[int]:
    """``count`` clients with distinct phones; their ids in insertion order."""
    phones = [f"7900{next(_phones):07d}" for _ in range(count)]
    async with engine.begin() as connection:
        rows = await connection.execute(
            text(
                "INSERT INTO clients (phone, operator_code)"
                " SELECT p, substr(p, 2, 3) FROM unnest(CAST(:phones AS text[])) AS p"
                " RETURNING id"
            ),
            {"phones": phones},
        )
        return sorted(row.id for row in rows)


async def insert_messages(
    engine: AsyncEngine,
    mailing_id: int,
    statuses: Sequence[str],
    client_ids: Sequence[int] | None = None,
) -> list[int]:
    """One message per status given, each for its own client (new ones unless given).

    Returns the message ids in the order of ``statuses``; the insert is one statement.
    """
    if client_ids is None:
        client_ids = await insert_clients(engine, len(statuses))
    assert len(client_ids) == len(statuses)
    async with engine.begin() as connection:
        rows = await connection.execute(
            text(
                "INSERT INTO messages (mailing_id, client_id, status)"
                " SELECT :mailing_id, c, s"
                " FROM unnest(CAST(:clients AS bigint[]), CAST(:statuses AS text[])) AS t(c, s)"
                " RETURNING id, client_id"
            ),
            {"mailing_id": mailing_id, "clients": list(client_ids), "statuses": list(statuses)},
        )
        by_client = {row.client_id: row.id for row in rows}
    return [by_client[client_id] for client_id in client_ids]


async def set_message_statuses(engine: AsyncEngine, changes: dict[int, str]) -> None:
    """Give each message id its new status, all in one statement (as a status batch does)."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE messages SET status = v.status"
                " FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]))"
                " AS v(id, status) WHERE messages.id = v.id"
            ),
            {"ids": list(changes), "statuses": list(changes.values())},
        )


async def message_statuses(engine: AsyncEngine, mailing_id: int) -> dict[int, str]:
    """``{message id: status}`` of one mailing, read from the table."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id, status FROM messages WHERE mailing_id = :id"), {"id": mailing_id}
        )
        return {row.id: row.status for row in rows}


async def real_counts(engine: AsyncEngine) -> Counts:
    """Messages per mailing and status, counted from the messages themselves."""
    async with engine.connect() as connection:
        mailings = await connection.execute(text("SELECT id FROM mailings"))
        counts: Counts = {row.id: dict(ZERO_COUNTS) for row in mailings}
        rows = await connection.execute(
            text("SELECT mailing_id, status, count(*) AS n FROM messages GROUP BY 1, 2")
        )
        for row in rows:
            counts[row.mailing_id][row.status] = row.n
    return counts


async def stored_counts(engine: AsyncEngine) -> Counts:
    """The counters the triggers keep in ``mailing_counts``."""
    columns = ", ".join(STATUSES)
    async with engine.connect() as connection:
        rows = await connection.execute(text(f"SELECT mailing_id, {columns} FROM mailing_counts"))  # noqa: S608
        return {row.mailing_id: {s: getattr(row, s) for s in STATUSES} for row in rows}


def stats_of(by_status: dict[str, int]) -> dict[str, Any]:
    """The ``stats`` object the API should show for these counts."""
    return {"total": sum(by_status.values()), "by_status": {**ZERO_COUNTS, **by_status}}
