"""When batches are written and how their deliveries are settled: in memory, no broker, no DB."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.status.batcher import Batcher
from services.status.errors import DatabaseFailed, DatabaseUnavailable
from shared import topology
from tests.status.fakes import FakeChannel, FakeWriter, batch_body, body
from tests.waiting import eventually

RESULTS = topology.RESULTS_QUEUE


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel()


async def _running(writer: FakeWriter, **options: Any) -> AsyncIterator[Batcher]:
    settings = {"batch_size": 10, "flush_interval_s": 0.05, "retry_max_s": 0.05, **options}
    batcher = Batcher(writer, **settings)
    task = asyncio.create_task(batcher.run())
    yield batcher
    batcher.stop()
    await asyncio.wait_for(task, 5)


@pytest.fixture
async def batcher(writer: FakeWriter) -> AsyncIterator[Batcher]:
    async for running in _running(writer):
        yield running


@pytest.fixture
async def slow_batcher(writer: FakeWriter) -> AsyncIterator[Batcher]:
    """One whose interval is long: only a full batch, or a stop, writes anything."""
    async for running in _running(writer, flush_interval_s=30.0):
        yield running


async def _settled(channel: FakeChannel, count: int) -> dict[int, str]:
    return await eventually(lambda: _fates(channel), lambda fates: len(fates) >= count)


async def _fates(channel: FakeChannel) -> dict[int, str]:
    return dict(channel.fates)


async def test_a_full_batch_is_written_at_once_and_acked_with_one_frame(
    slow_batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    for message_id in range(1, 11):
        slow_batcher.add(RESULTS, channel.deliver(body(message_id)))

    fates = await _settled(channel, 10)

    assert set(fates.values()) == {"ack"}
    assert channel.frames == [("ack", 10, True)]
    assert writer.batches[0].ids == list(range(1, 11))


async def test_a_batch_closes_on_the_results_its_deliveries_hold(
    slow_batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    # 4 + 4 results, then 4 more would pass the batch size of 10: a batch of two deliveries.
    for first in (1, 5, 9):
        ids = range(first, first + 4)
        slow_batcher.add(RESULTS, channel.deliver(batch_body(*ids), results=len(ids)))

    fates = await _settled(channel, 2)

    assert fates == {1: "ack", 2: "ack"}
    assert [b.ids for b in writer.batches] == [list(range(1, 9))]
    slow_batcher.stop()
    assert await _settled(channel, 3) == {1: "ack", 2: "ack", 3: "ack"}
    assert [b.ids for b in writer.batches][1] == list(range(9, 13))


async def test_a_partial_batch_waits_for_the_interval_from_its_first_delivery(
    writer: FakeWriter, channel: FakeChannel
) -> None:
    async for batcher in _running(writer, flush_interval_s=0.5):
        started = time.monotonic()
        batcher.add(RESULTS, channel.deliver(body(1)))
        await asyncio.sleep(0.4)
        batcher.add(RESULTS, channel.deliver(body(2)))

        await _settled(channel, 2)

        # From the second delivery it would have been 0.9 s.
        assert 0.5 <= time.monotonic() - started < 0.85
        assert [b.ids for b in writer.batches] == [[1, 2]]


async def test_a_stop_writes_what_is_buffered(
    slow_batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    slow_batcher.add(RESULTS, channel.deliver(body(1)))
    slow_batcher.stop()

    assert await _settled(channel, 1) == {1: "ack"}


async def test_invalid_bodies_and_unknown_ids_are_rejected_the_rest_acked(
    batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    for raw in (body(1), b"{oops", body(5_000), body(2), b'{"message_id": 3}', body(3)):
        batcher.add(RESULTS, channel.deliver(raw))

    fates = await _settled(channel, 6)

    assert fates == {1: "ack", 2: "reject", 3: "reject", 4: "ack", 5: "reject", 6: "ack"}
    assert writer.batches[0].ids == [1, 2, 3, 5_000]
    assert batcher.counters.rejected == 3


async def test_the_invalid_results_of_a_batch_are_named_and_the_rest_written(
    batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    raw = (
        b'{"results": [{"message_id": 1, "status": "sent", "attempts": 1},'
        b' {"message_id": 2, "status": "delivered", "attempts": 1}, {"id": 3}]}'
    )
    with capture_logs() as logs:
        batcher.add(RESULTS, channel.deliver(raw, results=3))
        fates = await _settled(channel, 1)

    assert fates == {1: "ack"}
    assert writer.batches[0].ids == [1]
    rejected = [log for log in logs if log["event"] == "result.rejected"]
    assert [(log["reason"], log["message_id"]) for log in rejected] == [
        ("invalid result", 2),
        ("invalid result", None),
    ]


async def test_dead_work_becomes_a_failed_result(
    batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    work = (
        b'{"message_id": 4, "mailing_id": 1, "client_id": 1, "phone": "79161234567",'
        b' "text": "hi", "deadline_at": "2030-01-01T00:00:00Z", "attempt": 4}'
    )
    batcher.add(topology.WORK_DEAD_QUEUE, channel.deliver(work))

    assert await _settled(channel, 1) == {1: "ack"}
    assert writer.batches[0].statuses == ["failed"]
    assert writer.batches[0].attempts == [4]


async def test_an_unreachable_database_holds_the_batch_until_it_is_back(
    batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    writer.failures = [DatabaseUnavailable("down")] * 3
    batcher.add(RESULTS, channel.deliver(body(1)))

    assert await _settled(channel, 1) == {1: "ack"}
    assert len(writer.batches) == 1


async def test_a_stop_while_the_database_is_unreachable_gives_every_batch_back_untried(
    writer: FakeWriter, channel: FakeChannel
) -> None:
    writer.failures = [DatabaseUnavailable("down")] * 1_000
    async for batcher in _running(writer, batch_size=2, retry_max_s=30.0):
        for message_id in (1, 2, 3):
            batcher.add(RESULTS, channel.deliver(body(message_id)))
        await eventually(lambda: _count(writer), lambda left: left < 1_000)
        left_at_stop = len(writer.failures)

        batcher.stop()

        assert await _settled(channel, 3) == {1: "requeue", 2: "requeue", 3: "requeue"}
        assert channel.frames == [("requeue", 2, True), ("requeue", 3, True)]
        assert len(writer.failures) == left_at_stop  # no write tried after the stop


async def test_a_batch_the_database_refuses_is_requeued_after_a_pause(
    batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    writer.failures = [DatabaseFailed("refused")]
    batcher.add(RESULTS, channel.deliver(body(1)))
    batcher.add(RESULTS, channel.deliver(b"nonsense"))

    assert await _settled(channel, 2) == {1: "requeue", 2: "reject"}


async def test_touched_mailings_are_finished_after_the_write(
    batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    for message_id in (101, 102, 305):
        batcher.add(RESULTS, channel.deliver(body(message_id)))

    await _settled(channel, 3)

    assert writer.finished == [[1, 3]]


async def test_a_failure_after_the_ack_settles_nothing_twice_and_batches_go_on(
    batcher: Batcher, writer: FakeWriter, channel: FakeChannel
) -> None:
    writer.finish_failures = [RuntimeError("a bug")]
    batcher.add(RESULTS, channel.deliver(body(101)))
    await _settled(channel, 1)

    batcher.add(RESULTS, channel.deliver(body(102)))

    assert await _settled(channel, 2) == {1: "ack", 2: "ack"}
    assert writer.finished == [[1]]


async def test_a_new_channel_after_a_reconnect_is_acked_on_its_own(
    batcher: Batcher, channel: FakeChannel
) -> None:
    recovered = FakeChannel()
    batcher.add(RESULTS, channel.deliver(body(1)))
    batcher.add(RESULTS, channel.deliver(body(2)))
    batcher.add(RESULTS, recovered.deliver(body(3)))

    await _settled(recovered, 1)

    assert channel.frames == [("ack", 2, True)]
    assert recovered.frames == [("ack", 1, True)]


async def _count(writer: FakeWriter) -> int:
    return len(writer.failures)
