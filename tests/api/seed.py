"""What the API tests build and read: the app, its paths, and rows through the API or SQL.

Mailings and clients go through the API. Nothing sends messages yet, so tests that need
messages write the rows the planner and the status writer will write later, with plain SQL.
"""

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import API_PREFIX, create_app
from shared.settings import ApiSettings, BrokerSettings, DatabaseSettings
from shared.statuses import MessageStatus
from tests.conftest import BROKER_URL

API_TOKEN = "test-api-token-5f1c9a"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CLIENTS = f"{API_PREFIX}/clients"
MAILINGS = f"{API_PREFIX}/mailings"
STATS = f"{API_PREFIX}/stats"

STATUSES = tuple(status.value for status in MessageStatus)
ZERO_COUNTS = dict.fromkeys(STATUSES, 0)

_phones = itertools.count()

Counts = dict[int, dict[str, int]]


def make_app(database_url: str, *, token: str = API_TOKEN, broker_url: str = BROKER_URL) -> FastAPI:
    """The API as ``mailer api`` builds it, from these values and defaults; no ``.env`` is read."""
    return create_app(
        ApiSettings(_env_file=None, api_token=SecretStr(token)),
        DatabaseSettings(_env_file=None, database_url=database_url),
        BrokerSettings(_env_file=None, rabbitmq_url=SecretStr(broker_url)),
    )


# --- through the API ----------------------------------------------------------------------


def in_hours(hours: float) -> str:
    """An ISO 8601 timestamp (UTC) this many hours from now."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def create_mailing(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A mailing that starts in an hour and ends in two, unless ``fields`` say otherwise."""
    body = {"start_at": in_hours(1), "end_at": in_hours(2), "text": "hello", **fields}
    response = await api.post(MAILINGS, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def create_client(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A client with the phone 79161234567, unless ``fields`` say otherwise."""
    response = await api.post(CLIENTS, json={"phone": "79161234567", **fields})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def walk(api: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following ``next_cursor`` until it is null (bounded: a loop fails)."""
    pages = []
    for _ in range(100):
        response = await api.get(path, params=params)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        pages.append(page)
        if page["next_cursor"] is None:
            return pages
        params = {**params, "cursor": page["next_cursor"]}
    raise AssertionError("next_cursor never became null")


def page_ids(pages: list[dict[str, Any]]) -> list[list[int]]:
    """The ids of each page's items, page by page."""
    return [[item["id"] for item in page["items"]] for page in pages]


def item_ids(pages: list[dict[str, Any]]) -> list[int]:
    """The ids of every item of these pages, in order."""
    return [item_id for ids in page_ids(pages) for item_id in ids]


def error_locs(response: httpx.Response) -> list[list[Any]]:
    """Where each error of a 422 answer lies, e.g. ``["body", "phone"]``."""
    return [error["loc"] for error in response.json()["detail"]]


# --- straight into the database -----------------------------------------------------------


async def row_count(engine: AsyncEngine, table: str, **where: int) -> int:
    """Rows of ``table`` whose columns equal ``where`` (table and columns are the test's own)."""
    condition = " AND ".join(f"{column} = :{column}" for column in where) or "true"
    async with engine.connect() as connection:
        found = await connection.scalar(
            text(f"SELECT count(*) FROM {table} WHERE {condition}"), where
        )
    return int(found or 0)


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
        rows = await connection.execute(text(f"SELECT mailing_id, {columns} FROM mailing_counts"))
        return {row.mailing_id: {s: getattr(row, s) for s in STATUSES} for row in rows}


def stats_of(by_status: dict[str, int]) -> dict[str, Any]:
    """The ``stats`` object the API should show for these counts."""
    return {"total": sum(by_status.values()), "by_status": {**ZERO_COUNTS, **by_status}}
