"""The database schema: its own rules, its agreement with the models, and its migrations."""

import asyncio
from collections.abc import Iterator
from datetime import datetime, time
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.migrate import alembic_config, create_database, drop_database, ensure_database
from shared.models import Base
from tests.conftest import ADMIN_URL, asyncpg_dsn, database_url_of, unique_database_name

CLIENT = "INSERT INTO clients (phone, operator_code) VALUES (:phone, :code)"
MAILING = (
    "INSERT INTO mailings (start_at, end_at, text, window_start, window_end)"
    " VALUES (:start_at, :end_at, :text, :window_start, :window_end)"
)
MESSAGE = (
    "INSERT INTO messages (mailing_id, client_id, status, attempts)"
    " VALUES (:mailing_id, :client_id, :status, :attempts)"
)
START = "2030-01-01T00:00:00Z"
END = "2030-01-02T00:00:00Z"


async def _insert(engine: AsyncEngine, statement: str, **values: Any) -> int:
    async with engine.begin() as connection:
        found = await connection.scalar(text(statement + " RETURNING id"), values)
    return int(found or 0)


async def _client(engine: AsyncEngine, phone: str = "79161234567", code: str = "916") -> int:
    return await _insert(engine, CLIENT, phone=phone, code=code)


async def _mailing(engine: AsyncEngine, **overrides: Any) -> int:
    values = {
        "start_at": START,
        "end_at": END,
        "text": "hello",
        "window_start": None,
        "window_end": None,
        **overrides,
    }
    for name in ("start_at", "end_at"):
        values[name] = datetime.fromisoformat(values[name])
    for name in ("window_start", "window_end"):
        values[name] = _time(values[name])
    return await _insert(engine, MAILING, **values)


def _time(value: str | None) -> time | None:
    return None if value is None else time.fromisoformat(value)


async def _message(
    engine: AsyncEngine, mailing_id: int, client_id: int, status: str = "pending", attempts: int = 0
) -> int:
    return await _insert(
        engine,
        MESSAGE,
        mailing_id=mailing_id,
        client_id=client_id,
        status=status,
        attempts=attempts,
    )


# --- the rules the database keeps on its own ----------------------------------------------


async def test_valid_rows_are_accepted(engine: AsyncEngine) -> None:
    client_id = await _client(engine)
    mailing_id = await _mailing(engine, text="x" * 2000, window_start="22:00", window_end="06:00")
    await _message(engine, mailing_id, client_id, status="sent", attempts=3)

    async with engine.connect() as connection:
        counts = (await connection.execute(text("SELECT * FROM mailing_counts"))).one()
    assert (counts.mailing_id, counts.sent, counts.pending) == (mailing_id, 1, 0)


_COUNTED = (
    "SELECT mailing_id, pending, queued, sent, failed, expired, cancelled FROM mailing_counts"
    " ORDER BY mailing_id"
)
_COUNTED_ROWS = (
    "SELECT g.id, count(*) FILTER (WHERE m.status = 'pending'),"
    " count(*) FILTER (WHERE m.status = 'queued'), count(*) FILTER (WHERE m.status = 'sent'),"
    " count(*) FILTER (WHERE m.status = 'failed'), count(*) FILTER (WHERE m.status = 'expired'),"
    " count(*) FILTER (WHERE m.status = 'cancelled')"
    " FROM mailings g LEFT JOIN messages m ON m.mailing_id = g.id GROUP BY g.id ORDER BY g.id"
)


async def test_counters_follow_one_statement_that_moves_some_rows_and_not_others(
    engine: AsyncEngine,
) -> None:
    first, second = await _mailing(engine), await _mailing(engine)
    clients = [await _client(engine, f"7916123{n:04d}", "916") for n in range(6)]
    ids = [await _message(engine, first, client) for client in clients]

    async with engine.begin() as connection:
        # In one statement: two rows sent, one failed, one only counts an attempt, one moves
        # to the other mailing with its status, one is left alone.
        await connection.execute(
            text(
                "UPDATE messages SET"
                " status = CASE WHEN id = ANY(:sent) THEN 'sent'"
                " WHEN id = :failed THEN 'failed' ELSE status END,"
                " attempts = attempts + 1,"
                " mailing_id = CASE WHEN id = :moved THEN :second ELSE mailing_id END"
                " WHERE id = ANY(:touched)"
            ),
            {
                "sent": ids[:2],
                "failed": ids[2],
                "moved": ids[4],
                "second": second,
                "touched": ids[:5],
            },
        )
        counted = (await connection.execute(text(_COUNTED))).all()
        expected = (await connection.execute(text(_COUNTED_ROWS))).all()

    assert [tuple(row) for row in counted] == [tuple(row) for row in expected]
    assert [tuple(row) for row in counted] == [
        (first, 2, 0, 2, 1, 0, 0),
        (second, 1, 0, 0, 0, 0, 0),
    ]


async def test_an_update_that_moves_no_counter_does_not_wait_for_the_counter_row(
    engine: AsyncEngine,
) -> None:
    mailing_id = await _mailing(engine)
    message_id = await _message(engine, mailing_id, await _client(engine), status="queued")

    async with engine.connect() as holder, engine.connect() as writer:
        await holder.execute(
            text("SELECT 1 FROM mailing_counts WHERE mailing_id = :id FOR UPDATE"),
            {"id": mailing_id},
        )
        await writer.execute(text("SET lock_timeout = '1s'"))
        # Fails with a lock timeout if the trigger reaches for the counter row.
        await writer.execute(
            text("UPDATE messages SET attempts = attempts + 1, status = status WHERE id = :id"),
            {"id": message_id},
        )
        await writer.commit()
        await holder.rollback()


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("89161234567", "916"),
        ("7916123456", "916"),
        ("7916123456a", "916"),
        ("79161234567", "9a6"),
        ("79161234567", "91"),
    ],
)
async def test_malformed_client_is_refused(engine: AsyncEngine, phone: str, code: str) -> None:
    with pytest.raises(IntegrityError):
        await _client(engine, phone, code)


async def test_duplicate_phone_is_refused(engine: AsyncEngine) -> None:
    await _client(engine)

    with pytest.raises(IntegrityError, match="uq_clients_phone"):
        await _client(engine, code="903")


async def test_empty_timezone_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        await _insert(
            engine,
            "INSERT INTO clients (phone, operator_code, timezone)"
            " VALUES ('79161234567', '916', '')",
        )


@pytest.mark.parametrize(
    "overrides",
    [
        {"end_at": START},
        {"end_at": "2029-12-31T23:59:59Z"},
        {"text": "   "},
        {"text": " \t\n "},
        {"text": ""},
        {"text": "x" * 2001},
        {"window_start": "10:00", "window_end": "10:00"},
        {"window_start": "10:00"},
        {"window_end": "10:00"},
    ],
    ids=[
        "end-equals-start",
        "end-before-start",
        "blank-text",
        "whitespace-text",
        "empty-text",
        "text-2001",
        "window-zero",
        "window-start-only",
        "window-end-only",
    ],
)
async def test_malformed_mailing_is_refused(engine: AsyncEngine, overrides: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError):
        await _mailing(engine, **overrides)


async def test_unknown_mailing_status_is_refused(engine: AsyncEngine) -> None:
    mailing_id = await _mailing(engine)

    with pytest.raises(IntegrityError, match="ck_mailings_status_known"):
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE mailings SET status = 'paused' WHERE id = :id"), {"id": mailing_id}
            )


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"status": "delivered"}, "ck_messages_status_known"),
        ({"status": "SENT"}, "ck_messages_status_known"),
        ({"attempts": -1}, "ck_messages_attempts_not_negative"),
    ],
)
async def test_malformed_message_is_refused(
    engine: AsyncEngine, values: dict[str, Any], constraint: str
) -> None:
    mailing_id = await _mailing(engine)
    client_id = await _client(engine)

    with pytest.raises(IntegrityError, match=constraint):
        await _message(engine, mailing_id, client_id, **values)


async def test_second_message_for_the_same_client_is_refused(engine: AsyncEngine) -> None:
    mailing_id = await _mailing(engine)
    client_id = await _client(engine)
    await _message(engine, mailing_id, client_id)

    with pytest.raises(IntegrityError, match="ix_messages_mailing_id_client_id"):
        await _message(engine, mailing_id, client_id, status="queued")


async def test_message_for_a_missing_mailing_is_refused(engine: AsyncEngine) -> None:
    client_id = await _client(engine)

    with pytest.raises(IntegrityError):
        await _message(engine, 12345, client_id)


@pytest.mark.parametrize("table", ["clients", "mailings", "messages"])
async def test_timestamps_may_not_be_null(engine: AsyncEngine, table: str) -> None:
    mailing_id = await _mailing(engine)
    client_id = await _client(engine)
    await _message(engine, mailing_id, client_id)

    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(text(f"UPDATE {table} SET created_at = NULL"))


# --- the models and the migrations agree --------------------------------------------------


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _check_names(connection: Connection) -> set[tuple[str, str]]:
    rows = connection.execute(
        text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
        )
    )
    return {(table, name) for table, name in rows if not name.endswith("_not_null")}


async def test_models_match_the_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
        in_database = await connection.run_sync(_check_names)

    assert differences == []
    # Alembic does not compare CHECK constraints: compare their names at least.
    in_models = {
        (table.name, str(constraint.name))
        for table in Base.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    assert in_database == in_models


# --- downgrade and upgrade again ----------------------------------------------------------


@pytest.fixture
def scratch_database_url() -> Iterator[str]:
    """An empty database of this test's own, dropped afterwards."""
    name = unique_database_name("migrate")
    asyncio.run(create_database(ADMIN_URL, name))
    yield database_url_of(name)
    asyncio.run(drop_database(ADMIN_URL, name))


async def _execute(dsn: str, sql: str, *arguments: Any) -> list[Any]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(sql, *arguments))
    finally:
        await connection.close()


def _objects(url: str) -> dict[str, set[str]]:
    """The tables, functions and triggers the database holds in ``public``."""
    dsn = asyncpg_dsn(url)
    queries = {
        "tables": "SELECT tablename AS n FROM pg_tables WHERE schemaname = 'public'",
        "functions": "SELECT proname AS n FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
        "triggers": "SELECT tgname AS n FROM pg_trigger WHERE NOT tgisinternal",
    }
    return {
        kind: {row["n"] for row in asyncio.run(_execute(dsn, sql))} for kind, sql in queries.items()
    }


# A plain function: Alembic's env.py runs its own event loop, which cannot nest in a test's.
def test_downgrade_to_base_and_upgrade_again(scratch_database_url: str) -> None:
    config = alembic_config(scratch_database_url)
    command.upgrade(config, "head")
    migrated = _objects(scratch_database_url)
    assert {"clients", "mailings", "messages", "mailing_counts"} <= migrated["tables"]
    assert len(migrated["triggers"]) == 5

    command.downgrade(config, "base")
    assert _objects(scratch_database_url) == {
        "tables": {"alembic_version"},
        "functions": set(),
        "triggers": set(),
    }

    command.upgrade(config, "head")
    assert _objects(scratch_database_url) == migrated


def test_windowed_mailings_from_before_0003_are_planned_by_zone(scratch_database_url: str) -> None:
    """Messages of a windowed mailing created under 0002 learn their zone; the zone is due."""
    config, dsn = alembic_config(scratch_database_url), asyncpg_dsn(scratch_database_url)
    command.upgrade(config, "0002")
    seed = """
        WITH c AS (
            INSERT INTO clients (phone, operator_code, timezone)
            VALUES ('79000000001', '900', 'Asia/Tokyo'), ('79000000002', '900', 'Asia/Tokyo')
            RETURNING id
        ), m AS (
            INSERT INTO mailings (start_at, end_at, text, status, window_start, window_end)
            VALUES (now(), now() + interval '1 day', 'hi', 'running', '09:00', '21:00')
            RETURNING id
        )
        INSERT INTO messages (mailing_id, client_id, status)
        SELECT m.id, c.id, CASE WHEN c.id = (SELECT min(id) FROM c) THEN 'pending' ELSE 'queued' END
        FROM m, c
    """
    asyncio.run(_execute(dsn, seed))

    command.upgrade(config, "head")

    found = asyncio.run(_execute(dsn, "SELECT status, timezone, dispatches FROM messages"))
    zones = asyncio.run(
        _execute(dsn, "SELECT timezone, wake_at <= now() AS due FROM mailing_zones")
    )
    assert sorted(tuple(row) for row in found) == [
        ("pending", "Asia/Tokyo", 0),
        ("queued", "Asia/Tokyo", 1),
    ]
    assert [tuple(row) for row in zones] == [("Asia/Tokyo", True)]


# --- creating and dropping databases ------------------------------------------------------


async def _database_exists(name: str) -> bool:
    sql = "SELECT 1 FROM pg_database WHERE datname = $1"
    return bool(await _execute(asyncpg_dsn(ADMIN_URL), sql, name))


async def test_database_names_are_quoted_whole() -> None:
    name = unique_database_name('odd "name"; --')

    await create_database(ADMIN_URL, name)
    try:
        assert await _database_exists(name)
    finally:
        await drop_database(ADMIN_URL, name)

    assert not await _database_exists(name)
    await drop_database(ADMIN_URL, name)  # already gone: nothing to do


async def test_ensure_database_creates_a_missing_one_once() -> None:
    name = unique_database_name("ensure")
    url = database_url_of(name)
    try:
        assert await ensure_database(url) is True
        assert await _database_exists(name)
        assert await ensure_database(url) is False
    finally:
        await drop_database(ADMIN_URL, name)
