"""The sender against the real RabbitMQ, PostgreSQL and provider stub, run in-process."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from services.sender.worker import Sender
from shared import topology
from shared.messages import Work
from shared.statuses import MessageStatus
from tests.provider_stub.helpers import TOKEN, instant
from tests.sender.helpers import TEXT, Pipeline, in_seconds, publish_raw
from tests.waiting import eventually

QUEUED, SENT = MessageStatus.QUEUED, MessageStatus.SENT


async def test_transient_answers_are_retried_until_sent(pipeline: Pipeline) -> None:
    [work] = await pipeline.messages()
    await pipeline.stub.script(work.message_id, ["503", "not-json", "drop", "ok"])
    results = pipeline.results

    async with pipeline.sender():
        await pipeline.publish(work)
        await results.wait_until(lambda: work.message_id in results.final(), timeout_s=20)

    journal = await pipeline.stub.journal(msg_id=work.message_id)
    assert [entry["outcome"] for entry in journal] == ["503", "not-json", "drop", "ok"]
    body = {"id": work.message_id, "phone": int(work.phone), "text": TEXT}
    assert [entry["body"] for entry in journal] == [body] * 4
    progress = [(r.status, r.attempts) for r in results.of(work.message_id)]
    assert progress == [(QUEUED, 1), (QUEUED, 2), (QUEUED, 3), (SENT, 4)]
    assert results.final()[work.message_id].sent_at is not None


async def test_bad_request_fails_after_one_call(pipeline: Pipeline) -> None:
    [work] = await pipeline.messages()
    await pipeline.stub.script(work.message_id, ["400"])
    results = pipeline.results

    async with pipeline.sender():
        await pipeline.publish(work)
        await results.wait_until(lambda: work.message_id in results.final(), timeout_s=10)

    assert len(await pipeline.stub.journal(msg_id=work.message_id)) == 1
    result = results.final()[work.message_id]
    assert (result.status, result.attempts, result.last_error) == ("failed", 1, "HTTP 400")


async def test_what_the_database_forbids_is_never_sent(pipeline: Pipeline) -> None:
    """Cancelled mailing, message already final, deleted message, end_at moved into the past:
    the work messages say nothing of it, the database does."""
    [cancelled] = await pipeline.messages(status="cancelled")
    already_sent, deleted, marker = await pipeline.messages(3)
    [late] = await pipeline.messages()
    async with pipeline.engine.begin() as db:
        await db.execute(
            text("UPDATE messages SET status = 'sent' WHERE id = :id"),
            {"id": already_sent.message_id},
        )
        await db.execute(text("DELETE FROM messages WHERE id = :id"), {"id": deleted.message_id})
        await db.execute(
            text("UPDATE mailings SET end_at = now() - interval '1 s' WHERE id = :id"),
            {"id": late.mailing_id},
        )
    results = pipeline.results

    # One at a time, in order: once the marker is reported, everything before it was handled.
    async with pipeline.sender(sender_prefetch=1):
        await pipeline.publish(cancelled, already_sent, deleted, late, marker)
        await results.wait_until(lambda: marker.message_id in results.final(), timeout_s=10)

    assert [entry["msg_id"] for entry in await pipeline.stub.journal()] == [marker.message_id]
    assert {message_id: r.status for message_id, r in results.final().items()} == {
        cancelled.message_id: "cancelled",
        late.message_id: "expired",
        marker.message_id: "sent",
    }
    assert results.final()[late.message_id].last_error == "deadline passed"


async def test_deadline_cuts_calls_short_and_expires(pipeline: Pipeline) -> None:
    results = pipeline.results
    async with pipeline.sender(sender_request_timeout_s=10):
        # Created once the sender runs, so that its start-up takes none of the 2.5 s.
        hanging, failing = await pipeline.messages(2, end_at=in_seconds(2.5))
        end_at = hanging.deadline_at
        await pipeline.stub.script(hanging.message_id, ["hang"])
        await pipeline.stub.script(failing.message_id, ["503"] * 20)
        await pipeline.publish(hanging, failing)
        await results.wait_until(lambda: len(results.final()) == 2, timeout_s=10)
        reported_at = datetime.now(UTC)

    assert reported_at <= end_at + timedelta(seconds=1)
    assert {r.status for r in results.final().values()} == {"expired"}
    journal = await pipeline.stub.journal()
    assert all(instant(entry["received_at"]) < end_at for entry in journal), journal
    outcomes = [entry["outcome"] for entry in journal]
    assert outcomes.count("hang") == 1
    assert outcomes.count("503") >= 2  # retried until the next wait would pass end_at


async def test_refused_token_backs_the_sender_off_until_fixed(pipeline: Pipeline) -> None:
    works = await pipeline.messages(30)
    await pipeline.stub.behaviour(token="a-token-the-sender-does-not-have")
    results = pipeline.results
    backoff = {"sender_auth_backoff_min_s": 1, "sender_auth_backoff_max_s": 2}

    async with pipeline.sender(sender_prefetch=5, sender_auth_hold_max_s=3, **backoff):
        await pipeline.publish(*works)
        await asyncio.sleep(5)  # measuring how little happens meanwhile: the sleep is the test
        refused = await pipeline.stub.journal()
        await pipeline.stub.behaviour(token=TOKEN)
        await results.wait_until(lambda: len(results.final()) == len(works), timeout_s=20)

    # The deliveries first in flight (prefetch 5), then one probe per pause (1 s, 2 s, 2 s).
    assert 1 <= len(refused) <= 5 + 3, refused
    assert {entry["outcome"] for entry in refused} == {"unauthorized"}
    assert {r.status for r in results.final().values()} == {"sent"}
    summary = await pipeline.stub.summary()
    assert (summary["successes"], summary["duplicate_successes"]) == (len(works), 0)


async def test_poison_is_dead_lettered_not_retried(pipeline: Pipeline) -> None:
    unsendable_phone = {
        "message_id": 1,
        "mailing_id": 1,
        "client_id": 1,
        "phone": "+7900",
        "text": "x",
        "deadline_at": "2030-01-01T00:00:00+00:00",
    }
    bodies = [b"not json", b'{"message_id": 1}', json.dumps(unsendable_phone).encode()]
    async with pipeline.sender():
        for body in bodies:
            await publish_raw(pipeline.connection, body)
        dead = await pipeline.dead_letters(len(bodies))
    assert sorted(dead) == sorted(bodies)
    assert await pipeline.stub.journal() == []


async def test_a_message_that_keeps_crashing_is_dead_lettered_after_the_limit(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries: list[int] = []

    async def crash(self: Sender, work: Work) -> None:
        deliveries.append(work.message_id)
        raise RuntimeError("a bug")

    monkeypatch.setattr(Sender, "process", crash)
    [work] = await pipeline.messages()
    async with pipeline.sender():
        await pipeline.publish(work)
        [dead] = await pipeline.dead_letters(1)
    assert Work.model_validate_json(dead) == work
    assert len(deliveries) == topology.WORK_DELIVERY_LIMIT + 1


async def test_stop_lets_the_call_in_flight_finish(pipeline: Pipeline) -> None:
    [work] = await pipeline.messages()
    await pipeline.stub.behaviour(latency_ms=1000)
    results = pipeline.results

    async with pipeline.sender():
        await pipeline.publish(work)
        await eventually(pipeline.stub.journal, lambda entries: len(entries) == 1, timeout_s=5)
    # Stopped while the call was in flight: it finished, was reported, and was acked.

    await results.wait_until(lambda: work.message_id in results.final(), timeout_s=5)
    assert results.final()[work.message_id].status == "sent"
    channel = await pipeline.connection.channel()
    work_queue = await channel.get_queue(topology.WORK_QUEUE)
    assert await work_queue.get(fail=False, timeout=2) is None  # acked, not put back


async def test_a_call_still_running_past_the_stop_timeout_goes_back_to_the_queue(
    pipeline: Pipeline,
) -> None:
    [work] = await pipeline.messages()
    await pipeline.stub.behaviour(latency_ms=10_000)

    with capture_logs() as logs:
        async with pipeline.sender(sender_stop_timeout_s=0.5):
            await pipeline.publish(work)
            await eventually(pipeline.stub.journal, lambda entries: len(entries) == 1, 5)
            stop_started = time.monotonic()
        stopped_in_s = time.monotonic() - stop_started

    assert stopped_in_s < 5  # the 10 s call was given up on, not waited for
    assert [e["cancelled"] for e in logs if e["event"] == "sender.stop_timeout"] == [1]
    channel = await pipeline.connection.channel()
    work_queue = await channel.get_queue(topology.WORK_QUEUE)
    again = await work_queue.get(fail=False, timeout=2)
    assert again is not None  # not acked: another sender takes it
    assert Work.model_validate_json(again.body).message_id == work.message_id
    assert work.message_id not in pipeline.results.final()
