"""Dispatching: the message table as the outbox of the work queue (SPEC §5 invariants 1 and 5)."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.planner.tick import tick
from shared.broker import BrokerError, Publisher, connect
from shared.statuses import MessageStatus
from tests.planner.helpers import (
    RecordingPublisher,
    add_clients,
    add_mailing,
    audience,
    drain_work,
    execute,
    mailing,
    mailings_by_tick,
    messages,
    planner_of,
    statuses,
)

TEXT = 'Привет, "друг" \\ 👋\nline two'


async def test_work_in_the_queue_carries_each_message_once_then_it_is_queued(
    engine: AsyncEngine, publisher: Publisher, vhost_url: str
) -> None:
    client_ids = await add_clients(engine, ("900", "a"), ("901", "b"), ("902", "c"))
    mailing_id = await add_mailing(engine, message_text=TEXT)

    report = await tick(planner_of(engine, publisher))

    row = await mailing(engine, mailing_id)
    stored = await messages(engine, mailing_id)
    works = sorted(await drain_work(vhost_url), key=lambda work: work.message_id)
    assert report.dispatched == 3
    assert [w.message_id for w in works] == [m.id for m in stored]
    assert [w.client_id for w in works] == [m.client_id for m in stored] == client_ids
    assert {(w.mailing_id, w.text, w.deadline_at, w.attempt) for w in works} == {
        (mailing_id, TEXT, row.end_at, 1)
    }
    assert [w.phone[:4] for w in works] == ["7900", "7901", "7902"]
    assert {m.status for m in stored} == {MessageStatus.QUEUED}
    assert (row.status, row.queued) == ("running", 3)


async def test_each_dispatch_names_its_transaction_in_the_rows_and_the_work(
    engine: AsyncEngine,
) -> None:
    await add_clients(engine, ("900", ""), ("901", ""), ("902", ""))
    mailing_id = await add_mailing(engine)
    first, second = RecordingPublisher(), RecordingPublisher()

    one_batch = {"planner_dispatch_batch_size": 2, "planner_batches_per_tick": 1}
    await tick(planner_of(engine, first, **one_batch))
    await tick(planner_of(engine, second, **one_batch))

    xid_of = {row.id: row.dispatch_xid for row in await messages(engine, mailing_id)}
    works = first.published + second.published
    assert {w.message_id: w.dispatch_xid for w in works} == xid_of
    assert (len(first.published), len(second.published)) == (2, 1)
    assert len({w.dispatch_xid for w in first.published}) == 1  # one transaction per batch
    assert {w.dispatch_xid for w in first.published}.isdisjoint(
        {w.dispatch_xid for w in second.published}
    )
    assert [w.dispatch for w in works] == [1, 1, 1]


async def test_a_failed_publish_leaves_messages_pending_for_the_next_tick_with_the_same_ids(
    engine: AsyncEngine, publisher: Publisher, vhost_url: str
) -> None:
    await add_clients(engine, *[("900", "")] * 5)
    mailing_id = await add_mailing(engine)
    broken = RecordingPublisher(refuse=lambda _work: True)

    failed = await tick(planner_of(engine, broken))
    before = await statuses(engine, mailing_id)
    retried = await tick(planner_of(engine, publisher))

    assert (failed.dispatched, set(before.values())) == (0, {MessageStatus.PENDING})
    assert retried.dispatched == 5
    assert sorted(w.message_id for w in await drain_work(vhost_url)) == sorted(before)
    assert set((await statuses(engine, mailing_id)).values()) == {MessageStatus.QUEUED}


async def test_a_publish_failing_mid_batch_resends_only_the_unconfirmed_messages(
    engine: AsyncEngine,
) -> None:
    await add_clients(engine, *[("900", "")] * 10)
    mailing_id = await add_mailing(engine)
    flaky = RecordingPublisher(refuse=lambda work: work.message_id % 2 == 1)

    first = await tick(planner_of(engine, flaky))
    after_first = await statuses(engine, mailing_id)
    healthy = RecordingPublisher()
    second = await tick(planner_of(engine, healthy))

    confirmed = {i for i, status in after_first.items() if status == MessageStatus.QUEUED}
    assert (first.dispatched, sorted(confirmed)) == (5, sorted(flaky.ids))
    assert all(i % 2 == 1 for i, s in after_first.items() if s == MessageStatus.PENDING)
    assert second.dispatched == 5
    assert sorted(flaky.ids + healthy.ids) == sorted(after_first)


async def test_a_broker_failure_stops_dispatching_for_the_rest_of_the_tick(
    engine: AsyncEngine,
) -> None:
    await add_clients(engine, *[("900", "")] * 6)
    first_id = await add_mailing(engine)
    second_id = await add_mailing(engine)
    broken = RecordingPublisher(refuse=lambda _work: True)

    report = await tick(planner_of(engine, broken, planner_dispatch_batch_size=2))

    # One attempt, not one per mailing and batch: the broker is in trouble.
    assert (report.dispatched, report.more_work) == (0, False)
    pending = {MessageStatus.PENDING}
    assert set((await statuses(engine, first_id)).values()) == pending
    assert set((await statuses(engine, second_id)).values()) == pending


async def test_nothing_is_dispatched_once_the_deadline_has_passed(engine: AsyncEngine) -> None:
    await add_clients(engine, *[("900", "")] * 4)
    mailing_id = await add_mailing(engine)
    one_message = {"planner_dispatch_batch_size": 1, "planner_batches_per_tick": 1}
    await tick(planner_of(engine, RecordingPublisher(), **one_message))
    await execute(
        engine,
        "UPDATE mailings SET end_at = now() - interval '1 second',"
        " start_at = now() - interval '1 hour' WHERE id = :id",
        id=mailing_id,
    )
    late = RecordingPublisher()

    report = await tick(planner_of(engine, late))

    assert (report.dispatched, late.published) == (0, [])
    counts = await mailing(engine, mailing_id)
    assert (counts.queued, counts.expired, counts.status) == (1, 3, "running")


async def test_batches_are_bounded_per_tick_and_mailings_take_turns(engine: AsyncEngine) -> None:
    await add_clients(engine, *[("900", "")] * 25)
    first_id = await add_mailing(engine)
    second_id = await add_mailing(engine)
    publisher = RecordingPublisher()
    planner = planner_of(
        engine, publisher, planner_dispatch_batch_size=10, planner_batches_per_tick=2
    )

    reports = [await tick(planner) for _ in range(3)]

    assert [(r.dispatched, r.more_work) for r in reports] == [(40, True), (10, False), (0, False)]
    first_tick = publisher.published[:40]
    assert sum(w.mailing_id == first_id for w in first_tick) == 20
    assert sum(w.mailing_id == second_id for w in first_tick) == 20
    assert len(set(publisher.ids)) == 50


async def test_two_planners_ticking_at_once_make_and_send_each_message_once(
    engine: AsyncEngine, database_url: str, vhost_url: str
) -> None:
    client_ids = await add_clients(engine, *[("900", str(n % 3)) for n in range(300)])
    mailing_ids = [await add_mailing(engine), await add_mailing(engine, tags=["1", "2"])]
    sizes = {"planner_audience_chunk_size": 7, "planner_dispatch_batch_size": 11}
    engines = [create_async_engine(database_url) for _ in range(2)]
    connections = [await connect(vhost_url) for _ in range(2)]
    try:
        planners = [
            planner_of(e, await Publisher.open(c), planner_batches_per_tick=5, **sizes)
            for e, c in zip(engines, connections, strict=True)
        ]
        for _ in range(20):
            reports = await asyncio.gather(*(tick(p) for p in planners))
            # A planner that found rows locked by the other says "no more" for them: stop
            # only after a round in which neither had anything left to do.
            if not any(r.more_work or r.dispatched or r.materialised for r in reports):
                break
    finally:
        for connection in connections:
            await connection.close()
        for other in engines:
            await other.dispose()

    assert await audience(engine, mailing_ids[0]) == client_ids
    assert await audience(engine, mailing_ids[1]) == [c for n, c in enumerate(client_ids) if n % 3]
    stored = {**await statuses(engine, mailing_ids[0]), **await statuses(engine, mailing_ids[1])}
    published = [work.message_id for work in await drain_work(vhost_url)]
    assert len(stored) == 500
    assert sorted(published) == sorted(stored)
    assert set(stored.values()) == {MessageStatus.QUEUED}


async def test_an_audience_being_materialised_gets_its_first_batch_then_waits_for_the_rest(
    engine: AsyncEngine,
) -> None:
    await add_clients(engine, *((f"9{n:02d}", "") for n in range(10)))
    mailing_id = await add_mailing(engine)
    publisher = RecordingPublisher()
    # Chunks of 4 clients, batches of 2: the audience takes three chunks.
    planner = planner_of(
        engine,
        publisher,
        planner_audience_chunk_size=4,
        planner_dispatch_batch_size=2,
        planner_batches_per_tick=1,
    )

    first = await tick(planner)  # chunk 1 of 3, then the first batch
    second = await tick(planner)  # chunk 2 of 3: nothing more is dispatched yet
    assert (first.materialised, first.dispatched) == (4, 2)
    assert (second.materialised, second.dispatched) == (4, 0)
    assert (await mailing(engine, mailing_id)).materialized_at is None

    reports = [await tick(planner) for _ in range(6)]

    assert (await mailing(engine, mailing_id)).materialized_at is not None
    assert sum(r.dispatched for r in reports) == 8
    assert sorted(w.message_id for w in publisher.published) == sorted(
        m.id for m in await messages(engine, mailing_id)
    )


async def test_dispatch_holds_back_while_the_work_queue_is_full(
    engine: AsyncEngine, publisher: Publisher, vhost_url: str
) -> None:
    await add_clients(engine, *((f"9{n:02d}", "") for n in range(10)))
    mailing_id = await add_mailing(engine)
    planner = planner_of(engine, publisher, planner_dispatch_batch_size=2, planner_work_queue_max=3)

    first = await tick(planner)  # 2 waiting: room for one more batch, then 4: full
    held = await tick(planner)  # no sender took any meanwhile
    waiting = await drain_work(vhost_url)  # now the senders catch up
    after = await tick(planner)

    assert (first.dispatched, held.dispatched, after.dispatched) == (4, 0, 4)
    assert len(waiting) == 4
    found = await statuses(engine, mailing_id)
    assert sorted(found.values()) == ["pending"] * 2 + ["queued"] * 8


async def test_no_bound_or_an_unreadable_queue_holds_nothing_back(engine: AsyncEngine) -> None:
    await add_clients(engine, ("900", "a"), ("901", "b"))
    await add_mailing(engine)
    await add_mailing(engine)
    unbounded, unreadable = RecordingPublisher(), RecordingPublisher()
    unbounded.waiting = 1_000_000

    async def broker_away(queue: str) -> int:
        raise BrokerError("broker unavailable: test")

    unreadable.ready_count = broker_away  # type: ignore[method-assign]

    assert (await tick(planner_of(engine, unbounded, planner_work_queue_max=0))).dispatched == 4
    await execute(engine, "UPDATE messages SET status = 'pending'")
    assert (await tick(planner_of(engine, unreadable))).dispatched == 4


async def test_mailings_take_turns_at_the_room_the_work_queue_has(engine: AsyncEngine) -> None:
    await add_clients(engine, *((f"9{n:02d}", "") for n in range(4)))
    first, second = await add_mailing(engine), await add_mailing(engine)
    publisher = RecordingPublisher()
    # Room for one batch a tick: the bound, as when the senders are behind.
    planner = planner_of(engine, publisher, planner_dispatch_batch_size=2, planner_work_queue_max=1)

    by_tick = await mailings_by_tick(planner, publisher, 3)

    assert by_tick == [{first}, {second}, {first}]
    assert sorted((await statuses(engine, second)).values()) == ["pending"] * 2 + ["queued"] * 2
