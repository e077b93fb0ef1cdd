"""Results in batches: what goes into one publish, and what a caller learns of it."""

import asyncio

import pytest
from pydantic import BaseModel

from services.sender.reports import Reports
from shared import topology
from shared.broker import BrokerError
from shared.messages import Result, ResultBatch
from shared.statuses import MessageStatus


class GatedPublisher:
    """Holds each publish until the test lets it through (its confirm), or fails it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failing = False
        self._gate = asyncio.Event()

    async def publish(self, exchange: str, routing_key: str, body: BaseModel) -> None:
        assert (exchange, routing_key) == (topology.RESULTS_EXCHANGE, "result")
        assert isinstance(body, ResultBatch)
        self.batches.append([r.message_id for r in body.results])
        await self._gate.wait()
        self._gate.clear()
        if self.failing:
            raise BrokerError("publish to mailer.results not confirmed: test")

    def confirm(self) -> None:
        self._gate.set()


def _sent(message_id: int) -> Result:
    return Result(message_id=message_id, status=MessageStatus.SENT, attempts=1)


async def _turns() -> None:
    """Let the tasks run as far as they can: nothing here waits on I/O."""
    for _ in range(10):
        await asyncio.sleep(0)


async def _started(reports: Reports, *message_ids: int) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(reports.report(_sent(i))) for i in message_ids]
    await _turns()
    return tasks


async def test_results_reported_during_a_publish_go_together_in_the_next() -> None:
    publisher = GatedPublisher()
    reports = Reports(publisher)  # type: ignore[arg-type]

    [first] = await _started(reports, 1)
    later = await _started(reports, 2, 3, 4)
    assert publisher.batches == [[1]]  # a lone result goes out at once
    assert not first.done()  # not before its confirm

    publisher.confirm()
    await _turns()
    assert first.done()
    assert publisher.batches == [[1], [2, 3, 4]]
    assert not any(task.done() for task in later)

    publisher.confirm()
    await asyncio.gather(*later)


async def test_a_batch_holds_at_most_its_limit() -> None:
    publisher = GatedPublisher()
    reports = Reports(publisher, max_batch=2)  # type: ignore[arg-type]

    tasks = await _started(reports, 1, 2, 3)
    for _ in range(2):
        publisher.confirm()
        await _turns()
    await asyncio.gather(*tasks)

    assert publisher.batches == [[1, 2], [3]]


async def test_an_unconfirmed_publish_fails_each_of_its_callers_and_not_the_next() -> None:
    publisher = GatedPublisher()
    reports = Reports(publisher)  # type: ignore[arg-type]

    [first] = await _started(reports, 1)
    failed = await _started(reports, 2, 3)
    publisher.confirm()
    await _turns()
    publisher.failing = True
    publisher.confirm()
    errors = await asyncio.gather(*failed, return_exceptions=True)
    assert [type(e) for e in errors] == [BrokerError, BrokerError]
    assert errors[0] is not errors[1]
    await first

    publisher.failing = False
    [after] = await _started(reports, 4)
    publisher.confirm()
    await after
    assert publisher.batches == [[1], [2, 3], [4]]


async def test_a_cancelled_caller_leaves_the_others_of_its_batch_alone() -> None:
    publisher = GatedPublisher()
    reports = Reports(publisher)  # type: ignore[arg-type]

    [first] = await _started(reports, 1)
    stopped, kept = await _started(reports, 2, 3)
    stopped.cancel()
    for _ in range(2):
        publisher.confirm()
        await _turns()

    await asyncio.gather(first, kept)
    with pytest.raises(asyncio.CancelledError):
        await stopped
    assert publisher.batches == [[1], [2, 3]]  # a true result, published all the same
