"""Results in batches: what goes into one publish, and what a caller learns of it."""

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from services.sender.reports import Reports
from shared import topology
from shared.broker import BrokerError
from shared.messages import Result, ResultBatch
from shared.statuses import MessageStatus

WAIT_S = 2.0


class GatedPublisher:
    """Holds each publish until the test confirms it, or fails it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failing = False
        self._started: asyncio.Queue[list[int]] = asyncio.Queue()
        self._confirms: asyncio.Queue[None] = asyncio.Queue()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: BaseModel,
        headers: dict[str, Any] | None = None,
    ) -> None:
        assert (exchange, routing_key) == (topology.RESULTS_EXCHANGE, "result")
        assert isinstance(body, ResultBatch)
        ids = [r.message_id for r in body.results]
        assert headers == {topology.RESULTS_COUNT_HEADER: len(ids)}
        self.batches.append(ids)
        self._started.put_nowait(ids)
        await self._confirms.get()
        if self.failing:
            raise BrokerError("publish to mailer.results not confirmed: test")

    async def started(self) -> list[int]:
        """The ids of the next publish to start."""
        return await asyncio.wait_for(self._started.get(), WAIT_S)

    def confirm(self) -> None:
        self._confirms.put_nowait(None)


def _reports(publisher: GatedPublisher, max_batch: int = 100) -> Reports:
    return Reports(publisher, max_batch)  # type: ignore[arg-type]


def _report(reports: Reports, *message_ids: int) -> list[asyncio.Task[None]]:
    result = Result(message_id=0, status=MessageStatus.SENT, attempts=1)
    return [
        asyncio.create_task(reports.report(result.model_copy(update={"message_id": i})))
        for i in message_ids
    ]


async def _done(tasks: list[asyncio.Task[None]]) -> list[BaseException | None]:
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT_S)


async def test_results_reported_during_a_publish_go_together_in_the_next() -> None:
    publisher = GatedPublisher()
    reports = _reports(publisher)

    [first] = _report(reports, 1)
    assert await publisher.started() == [1]  # a lone result goes out at once
    later = _report(reports, 2, 3, 4)
    await asyncio.sleep(0)
    assert not first.done()  # not before its confirm

    publisher.confirm()
    assert await _done([first]) == [None]
    assert await publisher.started() == [2, 3, 4]
    assert not any(task.done() for task in later)
    publisher.confirm()
    assert await _done(later) == [None] * 3


async def test_a_batch_holds_at_most_its_limit() -> None:
    publisher = GatedPublisher()
    reports = _reports(publisher, max_batch=2)

    tasks = _report(reports, 1, 2, 3)
    assert await publisher.started() == [1, 2]
    publisher.confirm()
    assert await publisher.started() == [3]
    publisher.confirm()

    assert await _done(tasks) == [None] * 3


async def test_an_unconfirmed_publish_fails_each_of_its_callers_and_not_the_next() -> None:
    publisher = GatedPublisher()
    reports = _reports(publisher)

    [first] = _report(reports, 1)
    await publisher.started()
    failed = _report(reports, 2, 3)
    publisher.confirm()
    assert await publisher.started() == [2, 3]
    publisher.failing = True
    publisher.confirm()
    errors = await _done(failed)
    assert [type(e) for e in errors] == [BrokerError, BrokerError]
    assert errors[0] is not errors[1]
    assert await _done([first]) == [None]

    publisher.failing = False
    [after] = _report(reports, 4)
    assert await publisher.started() == [4]
    publisher.confirm()
    assert await _done([after]) == [None]


async def test_a_cancelled_caller_leaves_the_others_of_its_batch_alone() -> None:
    publisher = GatedPublisher()
    reports = _reports(publisher)

    [first] = _report(reports, 1)
    await publisher.started()
    stopped, kept = _report(reports, 2, 3)
    await asyncio.sleep(0)
    stopped.cancel()
    publisher.confirm()
    assert await publisher.started() == [2, 3]  # a true result, published all the same
    publisher.confirm()

    assert await _done([first, kept]) == [None, None]
    with pytest.raises(asyncio.CancelledError):
        await stopped


async def test_closing_waits_for_the_results_on_their_way() -> None:
    publisher = GatedPublisher()
    reports = _reports(publisher)

    tasks = _report(reports, 1, 2)
    assert await publisher.started() == [1, 2]
    closing = asyncio.create_task(reports.aclose(WAIT_S))
    publisher.confirm()
    await asyncio.wait_for(closing, WAIT_S)

    assert await _done(tasks) == [None, None]


async def test_closing_past_its_timeout_fails_every_caller_still_waiting() -> None:
    publisher = GatedPublisher()
    reports = _reports(publisher)

    [publishing] = _report(reports, 1)
    await publisher.started()
    waiting = _report(reports, 2, 3)
    await asyncio.sleep(0)
    await reports.aclose(0.05)  # the broker never confirms

    errors = await _done([publishing, *waiting])
    assert [type(e) for e in errors] == [BrokerError] * 3
    assert publisher.batches == [[1]]
