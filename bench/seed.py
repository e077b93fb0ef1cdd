"""Bulk data for benchmarks: clients, mailings and their messages, loaded with COPY.

Every mailing reaches every client, so ``messages = clients * mailings``. Message statuses
follow the mailing's own status, the way a real history looks: finished mailings are mostly
``sent``, running ones still have ``pending`` and ``queued`` work, cancelled ones stopped
part-way.
"""

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from shared.statuses import MailingStatus, MessageStatus

# Mailing status → (share of mailings, weights of message statuses in those mailings).
_MIX: dict[MailingStatus, tuple[float, dict[MessageStatus, float]]] = {
    MailingStatus.FINISHED: (
        0.7,
        {MessageStatus.SENT: 0.90, MessageStatus.FAILED: 0.04, MessageStatus.EXPIRED: 0.06},
    ),
    MailingStatus.RUNNING: (
        0.2,
        {
            MessageStatus.PENDING: 0.30,
            MessageStatus.QUEUED: 0.10,
            MessageStatus.SENT: 0.55,
            MessageStatus.FAILED: 0.05,
        },
    ),
    MailingStatus.CANCELLED: (
        0.1,
        {MessageStatus.SENT: 0.40, MessageStatus.FAILED: 0.02, MessageStatus.CANCELLED: 0.58},
    ),
}
_OPERATOR_CODES = ("916", "926", "903", "905", "999", "977")
_TAGS = ("", "vip", "new", "churn", "b2b")
_ZONES = ("Europe/Moscow", "Asia/Yekaterinburg", "Asia/Novosibirsk", "UTC")


@dataclass
class SeedResult:
    clients: int
    mailings: int
    messages: int
    messages_s: float
    """Time spent loading the messages (COPY plus the counter triggers)."""
    total_s: float


async def seed(
    conn: asyncpg.Connection, *, clients: int, mailings: int, rng: random.Random
) -> SeedResult:
    started = time.perf_counter()
    client_ids = await _copy_clients(conn, clients, rng)
    mailing_rows = await _copy_mailings(conn, mailings, rng)
    messages_started = time.perf_counter()
    messages = 0
    for mailing_id, status in mailing_rows:
        # One COPY per mailing: each statement's transition table (read by the counter
        # triggers) stays at one mailing's size, as it is for a planner batch.
        records = _message_records(mailing_id, status, client_ids, rng)
        await conn.copy_records_to_table("messages", records=records, columns=_MESSAGE_COLUMNS)
        messages += len(client_ids)
    finished = time.perf_counter()
    return SeedResult(
        clients=len(client_ids),
        mailings=len(mailing_rows),
        messages=messages,
        messages_s=finished - messages_started,
        total_s=finished - started,
    )


async def _copy_clients(conn: asyncpg.Connection, count: int, rng: random.Random) -> list[int]:
    # Distinct phones: 7 followed by a 10-digit number that grows with the row.
    records = [
        (
            f"7{9_000_000_000 + n:010d}",
            rng.choice(_OPERATOR_CODES),
            rng.choice(_TAGS),
            rng.choice(_ZONES),
        )
        for n in range(count)
    ]
    columns = ("phone", "operator_code", "tag", "timezone")
    await conn.copy_records_to_table("clients", records=records, columns=columns)
    return [row["id"] for row in await conn.fetch("SELECT id FROM clients ORDER BY id")]


async def _copy_mailings(
    conn: asyncpg.Connection, count: int, rng: random.Random
) -> list[tuple[int, MailingStatus]]:
    now = datetime.now(UTC)
    statuses = list(_MIX)
    shares = [share for share, _ in _MIX.values()]
    records = []
    for n in range(count):
        status = rng.choices(statuses, shares)[0]
        start_at = now - timedelta(days=count - n)
        end_at = start_at + timedelta(days=2 if status is MailingStatus.RUNNING else 1)
        if status is MailingStatus.RUNNING:
            end_at = max(end_at, now + timedelta(days=1))
        records.append((start_at, end_at, f"Benchmark mailing {n}", status.value))
    columns = ("start_at", "end_at", "text", "status")
    await conn.copy_records_to_table("mailings", records=records, columns=columns)
    rows = await conn.fetch("SELECT id, status FROM mailings ORDER BY id")
    return [(row["id"], MailingStatus(row["status"])) for row in rows]


_MESSAGE_COLUMNS = ("mailing_id", "client_id", "status", "attempts", "last_error", "sent_at")


def _message_records(
    mailing_id: int, mailing_status: MailingStatus, client_ids: list[int], rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    weights = _MIX[mailing_status][1]
    statuses = rng.choices(list(weights), list(weights.values()), k=len(client_ids))
    sent_at = datetime.now(UTC) - timedelta(hours=1)
    for client_id, status in zip(client_ids, statuses, strict=True):
        if status is MessageStatus.SENT:
            yield mailing_id, client_id, status.value, 1, None, sent_at
        elif status is MessageStatus.FAILED:
            yield mailing_id, client_id, status.value, 5, "provider answered 500", None
        elif status is MessageStatus.PENDING:
            yield mailing_id, client_id, status.value, 0, None, None
        else:
            yield mailing_id, client_id, status.value, 1, None, None
