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

STATS = "/api/v1/stats"


async def _assert_stats_match_messages(api: httpx.AsyncClient, engine: AsyncEngine) -> Counts:
    """Both statistics endpoints agree with the messages table; returns the real counts."""
    real = await real_counts(engine)
    overall = (await api.get(STATS)).json()
    assert {m["id"]: m["by_status"] for m in overall["mailings"]} == real
    for mailing in overall["mailings"]:
        assert mailing["total"] == sum(mailing["by_status"].values())
        one = (await api.get(f"/api/v1/mailings/{mailing['id']}")).json()
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


async def test_stats_follow_every_kind_of_write(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    mailings = [(await create_mailing(api))["id"] for _ in range(3)]
    clients = await insert_clients(engine, 6)
    ids = {
        mailings[0]: await insert_messages(engine, mailings[0], ["pending"] * 6, clients),
        mailings[1]: await insert_messages(engine, mailings[1], ["pending"] * 4, clients[:4]),
        mailings[2]: await insert_messages(engine, mailings[2], ["queued"] * 3, clients[3:]),
    }
    await _assert_stats_match_messages(api, engine)

    # One batch across all three mailings, as the status writer sends it.
    batch = dict.fromkeys(ids[mailings[0]][:4], "queued")
    batch |= dict.fromkeys(ids[mailings[1]], "queued")
    batch |= dict(zip(ids[mailings[2]], ["sent", "failed", "queued"], strict=True))
    await set_message_statuses(engine, batch)
    real = await _assert_stats_match_messages(api, engine)
    assert real[mailings[0]] == {**ZERO_COUNTS, "pending": 2, "queued": 4}

    # Attempts and errors noted, statuses unchanged (and some set to what they already are).
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE messages SET attempts = attempts + 1, last_error = 'timeout'")
        )
    await set_message_statuses(engine, {ids[mailings[1]][0]: "queued", ids[mailings[1]][1]: "sent"})
    real = await _assert_stats_match_messages(api, engine)
    assert real[mailings[1]] == {**ZERO_COUNTS, "queued": 3, "sent": 1}

    # A second batch finishing messages of two mailings at once.
    await set_message_statuses(
        engine,
        {ids[mailings[0]][0]: "sent", ids[mailings[0]][5]: "expired", ids[mailings[2]][2]: "sent"},
    )
    before = await _assert_stats_match_messages(api, engine)

    # Deleted clients: their messages stay (unsent ones cancelled by the API; a bare SQL
    # delete only clears client_id), so every mailing keeps its total.
    for client_id in clients[:2]:
        assert (await api.delete(f"/api/v1/clients/{client_id}")).status_code == 204
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM clients WHERE id = ANY(:ids)"), {"ids": clients[4:]}
        )
    after = await _assert_stats_match_messages(api, engine)
    assert {m: sum(c.values()) for m, c in after.items()} == {
        m: sum(c.values()) for m, c in before.items()
    }
    assert after[mailings[0]]["cancelled"] == 1

    # Deleted messages leave the counts.
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM messages WHERE id = ANY(:ids)"),
            {"ids": [ids[mailings[0]][0], ids[mailings[0]][1], ids[mailings[2]][0]]},
        )
    real = await _assert_stats_match_messages(api, engine)
    assert sum(real[mailings[0]].values()) == 4
    assert sum(real[mailings[2]].values()) == 2

    # Cancelling through the API is one more batch the counters follow.
    assert (await api.post(f"/api/v1/mailings/{mailings[1]}/cancel")).status_code == 200
    real = await _assert_stats_match_messages(api, engine)
    assert real[mailings[1]] == {**ZERO_COUNTS, "cancelled": 3, "sent": 1}


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


async def _two_mailings_with_messages(
    api: httpx.AsyncClient, engine: AsyncEngine, per_mailing: int
) -> tuple[list[int], list[int]]:
    first = await create_mailing(api)
    second = await create_mailing(api)
    return (
        await insert_messages(engine, first["id"], ["queued"] * per_mailing),
        await insert_messages(engine, second["id"], ["queued"] * per_mailing),
    )


async def _batch(connection: AsyncConnection, ids: list[int], status: str) -> None:
    """One status batch: a single statement, as the status writer issues it."""
    await connection.execute(
        text("UPDATE messages SET status = CAST(:status AS text) WHERE id = ANY(:ids)"),
        {"ids": ids, "status": status},
    )


async def _until_waiting_for_a_lock(engine: AsyncEngine, pid: int, timeout_s: float) -> None:
    async def poll() -> None:
        while True:
            async with engine.connect() as connection:
                waiting = await connection.scalar(
                    text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                    {"p": pid},
                )
            if waiting:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout_s)


async def test_overlapping_batches_in_opposite_orders_both_complete(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second = await _two_mailings_with_messages(api, engine, 4)
    async with engine.connect() as a, engine.connect() as b:
        pid_b = await b.scalar(text("SELECT pg_backend_pid()"))
        await _batch(a, first[:2] + second[:2], "sent")
        # a holds both counter rows until it commits; b's batch must wait, not deadlock.
        waiting = asyncio.create_task(_batch(b, second[2:] + first[2:], "failed"))
        await _until_waiting_for_a_lock(engine, int(pid_b or 0), timeout_s=5)
        await a.commit()
        await asyncio.wait_for(waiting, timeout=5)
        await b.commit()

    real = await _assert_stats_match_messages(api, engine)
    assert list(real.values()) == [{**ZERO_COUNTS, "sent": 2, "failed": 2}] * 2


async def test_concurrent_batches_in_opposite_orders_do_not_deadlock(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first, second = await _two_mailings_with_messages(api, engine, 20)

    async def writer(ids: list[int], rounds: int) -> None:
        async with engine.connect() as connection:
            for n in range(rounds):
                await _batch(connection, ids, STATUSES[n % len(STATUSES)])
                await connection.commit()

    # Even messages go one way round the two mailings, odd ones the other way.
    await asyncio.wait_for(
        asyncio.gather(
            writer(first[0::2] + second[0::2], rounds=30),
            writer(second[1::2][::-1] + first[1::2][::-1], rounds=30),
        ),
        timeout=60,
    )

    assert await stored_counts(engine) == await real_counts(engine)
    await _assert_stats_match_messages(api, engine)
