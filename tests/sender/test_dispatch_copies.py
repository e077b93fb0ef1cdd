"""Two copies of one message from two planner dispatches: only the committed one is sent.

A planner whose commit fails after its publishes were confirmed (the database restarting)
leaves copies in the work queue whose rows stayed ``pending``; its next tick publishes the same
messages again. The planner's own dispatch code makes the copies here, so the test breaks if
either side stops naming its transaction.
"""

import asyncio

from sqlalchemy import text

from services.planner import sql as planner_sql
from services.planner.dispatch import dispatch_batch, publish_claimed
from shared.statuses import MessageStatus
from tests.sender.helpers import Pipeline

COUNT = 20
BATCH = 100


async def _pending(pipeline: Pipeline, count: int) -> int:
    """A running mailing with ``count`` pending messages, as the planner materialises them."""
    works = await pipeline.messages(count)
    async with pipeline.engine.begin() as db:
        await db.execute(
            text("UPDATE messages SET status = 'pending' WHERE mailing_id = :id"),
            {"id": works[0].mailing_id},
        )
    return works[0].mailing_id


async def _statuses(pipeline: Pipeline, mailing_id: int) -> list[str]:
    async with pipeline.engine.connect() as db:
        rows = await db.scalars(
            text("SELECT status FROM messages WHERE mailing_id = :id ORDER BY id"),
            {"id": mailing_id},
        )
        return list(rows)


async def test_a_copy_whose_dispatch_rolled_back_is_skipped_and_the_next_one_is_sent(
    pipeline: Pipeline,
) -> None:
    mailing_id = await _pending(pipeline, COUNT)
    params = {"mailing_id": mailing_id, "batch_size": BATCH}
    # Published and confirmed, then the transaction dies: the rows stay pending.
    async with pipeline.engine.connect() as db:
        lost = await db.begin()
        rolled_back = await publish_claimed(
            db, pipeline.publisher, mailing_id, planner_sql.CLAIM_BATCH, params
        )
        await lost.rollback()
    assert set(await _statuses(pipeline, mailing_id)) == {MessageStatus.PENDING}
    committed = await dispatch_batch(pipeline.engine, pipeline.publisher, mailing_id, BATCH)
    [marker] = await pipeline.messages()
    await pipeline.publish(marker)
    results = pipeline.results

    # One delivery at a time, oldest first: once the marker is reported, every copy before it
    # has been through the gate.
    async with pipeline.sender(sender_prefetch=1):
        await results.wait_until(lambda: marker.message_id in results.final(), timeout_s=20)

    journal = await pipeline.stub.journal()
    msg_ids = [entry["msg_id"] for entry in journal if entry["msg_id"] != marker.message_id]
    assert (rolled_back.published, committed.published) == (COUNT, COUNT)
    assert len(msg_ids) == len(set(msg_ids)) == COUNT
    assert {r.status for r in results.final().values()} == {MessageStatus.SENT}
    assert len(results.received) == COUNT + 1  # the skipped copies reported nothing


async def test_a_copy_taken_before_its_dispatch_commits_waits_for_the_commit(
    pipeline: Pipeline,
) -> None:
    mailing_id = await _pending(pipeline, COUNT)
    params = {"mailing_id": mailing_id, "batch_size": BATCH}
    results = pipeline.results

    async with pipeline.sender():
        async with pipeline.engine.connect() as db, db.begin():
            await publish_claimed(
                db, pipeline.publisher, mailing_id, planner_sql.CLAIM_BATCH, params
            )
            # The sender has the copies by now, and finds every row still pending: without
            # the dispatch check it would send them at once.
            await asyncio.sleep(0.3)
            uncommitted_calls = await pipeline.stub.journal()
        await results.wait_until(lambda: len(results.final()) == COUNT, timeout_s=20)

    journal = await pipeline.stub.journal()
    assert uncommitted_calls == []
    assert sorted(entry["msg_id"] for entry in journal) == sorted(results.final())
    assert len(journal) == COUNT
    assert {r.status for r in results.final().values()} == {MessageStatus.SENT}
