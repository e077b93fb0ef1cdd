"""Statistics: ``GET /api/v1/stats``, the ``stats`` of a mailing, and the counters behind them.

The counters in ``mailing_counts`` are kept by triggers, so every check here compares what the
API shows with a plain ``COUNT(*) GROUP BY status`` over the messages themselves.
"""

import asyncio
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.api.seed import (
    CLIENTS,
    MAILINGS,
    STATS,
    STATUSES,
    ZERO_COUNTS,
    Counts,
    create_mailing,
    insert_clients,
    insert_messages,
    real_counts,
    set_mailing_status,
    set_message_statuses,
    stats_of,
    stored_counts,
)


async def _assert_stats_match_messages(api: httpx.AsyncClient, engine: AsyncEngine) -> Counts:
    """Both statistics endpoints agree with the messages table; returns the real counts."""
    real = await real_counts(engine)
    overall = (await api.get(STATS)).json()
    assert {m["id"]: m["by_status"] for m in overall["mailings"]} == real
    for mailing in overall["mailings"]:
        assert mailing["total"] == sum(mailing["by_status"].values())
        one = (await api.get(f"{MAILINGS}/{mailing['id']}")).json()
        assert one["stats"] == stats_of(real[mailing["id"]])
    totals = {s: sum(counts[s] for counts in real.values()) for s in STATUSES}
    assert overall["by_status"] == totals
    assert overall["total"] == sum(totals.values())
    return real


async def test_stats_of_nothing_are_zeros(api: httpx.AsyncClient) -> None:
    response = await api.get(STATS)

    assert response.status_code == 200
    assert response.json() == {"mailings": [], "total": 0, "by_status": ZERO_COUNTS}


async def test_stats_shape(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    first = await create_mailing(api)
    second = await create_mailing(api)
    third = await create_mailing(api)
    await set_mailing_status(engine, second["id"], "running")
    await insert_messages(engine, first["id"], ["sent", "sent", "failed"])
    await insert_messages(engine, second["id"], ["pending", "queued", "sent", "expired"])

    response = await api.get(STATS)

    assert response.status_code == 200
    assert response.json() == {
        "mailings": [
            {"id": first["id"], "status": "scheduled", **stats_of({"sent": 2, "failed": 1})},
            {
                "id": second["id"],
                "status": "running",
                **stats_of({"pending": 1, "queued": 1, "sent": 1, "expired": 1}),
            },
            {"id": third["id"], "status": "scheduled", **stats_of({})},
        ],
        **stats_of({"pending": 1, "queued": 1, "sent": 3, "failed": 1, "expired": 1}),
    }


# --- the counters follow every kind of write ---------------------------------------------


async def _mailings(api: httpx.AsyncClient, count: int) -> list[int]:
    return [(await create_mailing(api))["id"] for _ in range(count)]


async def _execute(engine: AsyncEngine, statement: str, **values: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(statement), values)


async def test_inserted_messages_are_counted(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    first, second = await _mailings(api, 2)
    await insert_messages(engine, first, ["pending", "pending", "queued"])
    await insert_messages(engine, second, ["sent"])

    real = await _assert_stats_match_messages(api, engine)

    assert real == {
        first: {**ZERO_COUNTS, "pending": 2, "queued": 1},
        second: {**ZERO_COUNTS, "sent": 1},
    }


async def test_one_status_batch_across_mailings(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second, third = await _mailings(api, 3)
    clients = await insert_clients(engine, 4)
    a = await insert_messages(engine, first, ["pending"] * 4, clients)
    b = await insert_messages(engine, second, ["pending"] * 2, clients[:2])
    c = await insert_messages(engine, third, ["queued"] * 3, clients[1:])

    # One statement over all three mailings, as the status writer sends its batches.
    await set_message_statuses(
        engine, {a[0]: "queued", a[1]: "sent", b[0]: "queued", c[0]: "sent", c[1]: "failed"}
    )

    real = await _assert_stats_match_messages(api, engine)
    assert real == {
        first: {**ZERO_COUNTS, "pending": 2, "queued": 1, "sent": 1},
        second: {**ZERO_COUNTS, "pending": 1, "queued": 1},
        third: {**ZERO_COUNTS, "queued": 1, "sent": 1, "failed": 1},
    }


async def test_writes_that_keep_the_status_move_no_count(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    (mailing,) = await _mailings(api, 1)
    ids = await insert_messages(engine, mailing, ["queued", "queued", "sent"])

    await _execute(engine, "UPDATE messages SET attempts = attempts + 1, last_error = 'timeout'")
    await set_message_statuses(engine, {ids[0]: "queued", ids[2]: "sent"})  # what they are

    real = await _assert_stats_match_messages(api, engine)
    assert real == {mailing: {**ZERO_COUNTS, "queued": 2, "sent": 1}}


async def test_writes_that_keep_the_status_do_not_wait_for_each_other(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # Every sender notes attempts; if those writes locked the mailing's counter row, they
    # would queue behind one another for nothing.
    (mailing,) = await _mailings(api, 1)
    ids = await insert_messages(engine, mailing, ["queued", "queued"])
    async with engine.connect() as one, engine.connect() as other:
        await one.execute(
            text("UPDATE messages SET attempts = attempts + 1 WHERE id = :id"), {"id": ids[0]}
        )
        await other.execute(text("SET LOCAL lock_timeout = '1s'"))
        await other.execute(
            text("UPDATE messages SET status = status, last_error = 'x' WHERE id = :id"),
            {"id": ids[1]},
        )
        await other.commit()
        await one.commit()

    assert await stored_counts(engine) == await real_counts(engine)


async def test_deleted_clients_leave_the_counts(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second = await _mailings(api, 2)
    clients = await insert_clients(engine, 3)
    await insert_messages(engine, first, ["pending", "sent", "queued"], clients)
    await insert_messages(engine, second, ["sent", "failed"], clients[1:])

    # Through the API (its unsent messages become cancelled) and by plain SQL (which only
    # clears client_id): the messages stay either way.
    assert (await api.delete(f"{CLIENTS}/{clients[0]}")).status_code == 204
    await _execute(engine, "DELETE FROM clients WHERE id = :id", id=clients[2])

    real = await _assert_stats_match_messages(api, engine)
    assert real == {
        first: {**ZERO_COUNTS, "cancelled": 1, "sent": 1, "queued": 1},
        second: {**ZERO_COUNTS, "sent": 1, "failed": 1},
    }


async def test_deleted_messages_leave_the_counts(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second = await _mailings(api, 2)
    a = await insert_messages(engine, first, ["sent", "sent", "failed"])
    b = await insert_messages(engine, second, ["queued", "sent"])

    await _execute(engine, "DELETE FROM messages WHERE id = ANY(:ids)", ids=[a[0], a[2], b[0]])

    real = await _assert_stats_match_messages(api, engine)
    assert real == {first: {**ZERO_COUNTS, "sent": 1}, second: {**ZERO_COUNTS, "sent": 1}}


async def test_cancel_counts_pending_messages_as_cancelled(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    (mailing,) = await _mailings(api, 1)
    await set_mailing_status(engine, mailing, "running")
    await insert_messages(engine, mailing, ["pending", "queued", "sent", "failed"])

    assert (await api.post(f"{MAILINGS}/{mailing}/cancel")).status_code == 200

    real = await _assert_stats_match_messages(api, engine)
    expected = {**ZERO_COUNTS, "cancelled": 1, "queued": 1, "sent": 1, "failed": 1}
    assert real == {mailing: expected}


async def test_truncating_messages_zeroes_the_counts(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second = await _mailings(api, 2)
    await insert_messages(engine, first, ["sent", "queued"])
    await insert_messages(engine, second, ["failed"])

    await _execute(engine, "TRUNCATE messages")

    real = await _assert_stats_match_messages(api, engine)
    assert real == {first: ZERO_COUNTS, second: ZERO_COUNTS}


async def test_moving_a_message_to_another_mailing_moves_its_count(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second = await _mailings(api, 2)
    ids = await insert_messages(engine, first, ["sent", "queued"])

    await _execute(
        engine, "UPDATE messages SET mailing_id = :to WHERE id = :id", to=second, id=ids[0]
    )

    real = await _assert_stats_match_messages(api, engine)
    assert real == {first: {**ZERO_COUNTS, "queued": 1}, second: {**ZERO_COUNTS, "sent": 1}}


# --- the counters under random batches ----------------------------------------------------

MESSAGES_PER_MAILING = 5
MESSAGE_COUNT = 3 * MESSAGES_PER_MAILING
statuses = st.sampled_from(STATUSES)
indexes = st.integers(0, MESSAGE_COUNT - 1)
operations = st.one_of(
    st.tuples(st.just("status"), st.dictionaries(indexes, statuses, min_size=1)),
    st.tuples(st.just("attempts"), st.sets(indexes, min_size=1)),
    st.tuples(st.just("delete"), st.sets(indexes, min_size=1, max_size=3)),
)


async def _apply(engine: AsyncEngine, ids: list[int], operation: tuple[str, Any]) -> None:
    kind, argument = operation
    if kind == "status":
        await set_message_statuses(engine, {ids[i]: status for i, status in argument.items()})
        return
    statement = {
        "attempts": "UPDATE messages SET attempts = attempts + 1 WHERE id = ANY(:ids)",
        "delete": "DELETE FROM messages WHERE id = ANY(:ids)",
    }[kind]
    async with engine.begin() as connection:
        await connection.execute(text(statement), {"ids": [ids[i] for i in argument]})


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    initial=st.lists(statuses, min_size=MESSAGE_COUNT, max_size=MESSAGE_COUNT),
    batches=st.lists(operations, min_size=1, max_size=6),
)
async def test_counters_equal_real_counts_after_random_batches(
    engine: AsyncEngine, initial: list[str], batches: list[tuple[str, Any]]
) -> None:
    # The tables are emptied per test, not per example: each example brings its own rows.
    async with engine.begin() as connection:
        rows = await connection.execute(
            text(
                "INSERT INTO mailings (start_at, end_at, text)"
                " SELECT now(), now() + interval '1 hour', 'x' FROM generate_series(1, 3)"
                " RETURNING id"
            )
        )
        mailing_ids = sorted(row.id for row in rows)
    ids: list[int] = []
    for n, mailing_id in enumerate(mailing_ids):
        chunk = initial[n * MESSAGES_PER_MAILING : (n + 1) * MESSAGES_PER_MAILING]
        ids += await insert_messages(engine, mailing_id, chunk)
    assert await stored_counts(engine) == await real_counts(engine)

    for operation in batches:
        await _apply(engine, ids, operation)
        assert await stored_counts(engine) == await real_counts(engine)


# --- concurrent batches -------------------------------------------------------------------


async def _batch(connection: AsyncConnection, ids: list[int], status: str) -> None:
    """One status batch: a single statement, as the status writer issues it."""
    await connection.execute(
        text("UPDATE messages SET status = CAST(:status AS text) WHERE id = ANY(:ids)"),
        {"ids": ids, "status": status},
    )


async def _until_blocked(engine: AsyncEngine, pid: int, by: int, timeout_s: float) -> None:
    """Returns once backend ``pid`` waits for a lock that backend ``by`` holds."""

    async def poll() -> None:
        while True:
            async with engine.connect() as connection:
                blockers = await connection.scalar(
                    text("SELECT pg_blocking_pids(:pid)"), {"pid": pid}
                )
            if by in blockers:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout_s)


async def test_batches_over_the_same_mailings_in_either_order_do_not_deadlock(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second = await _mailings(api, 2)
    # The second mailing's messages are written first, so the first mailing's counter row,
    # written last, lies after the second's in the table: a trigger locking counter rows in
    # the order it scans them, not in mailing order, would lock the second's first below
    # (without the trigger's `ORDER BY mailing_id FOR UPDATE` this test fails with 40P01).
    b = await insert_messages(engine, second, ["queued", "queued"])
    a = await insert_messages(engine, first, ["queued", "queued"])
    async with engine.connect() as one, engine.connect() as other:
        one_pid = await one.scalar(text("SELECT pg_backend_pid()"))
        other_pid = await other.scalar(text("SELECT pg_backend_pid()"))
        await _batch(one, [a[0]], "sent")  # holds the first mailing's counter row from here
        both = asyncio.create_task(_batch(other, [b[0], a[1]], "failed"))
        await _until_blocked(engine, other_pid, by=one_pid, timeout_s=5)
        # `other` waits for the first mailing's row. Had it locked the second's already, this
        # would wait for `other` in turn: a deadlock, which PostgreSQL breaks by failing one
        # of the two after deadlock_timeout (40P01).
        await asyncio.wait_for(_batch(one, [b[1]], "sent"), timeout=10)
        await one.commit()
        await asyncio.wait_for(both, timeout=10)
        await other.commit()

    real = await _assert_stats_match_messages(api, engine)
    assert real == {
        first: {**ZERO_COUNTS, "sent": 1, "failed": 1},
        second: {**ZERO_COUNTS, "failed": 1, "sent": 1},
    }
