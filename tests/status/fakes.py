"""In-memory stand-ins for RabbitMQ deliveries and the database writer, for batcher tests."""

import itertools
from dataclasses import dataclass, field
from typing import Any

from services.status.errors import StatusError
from services.status.merge import Columns
from services.status.sql import Written
from shared import topology
from shared.messages import Result, ResultBatch


class FakeChannel:
    """Settles deliveries as RabbitMQ does: ``multiple`` covers every open tag up to it."""

    def __init__(self) -> None:
        self._tags = itertools.count(1)
        self.open: dict[int, FakeDelivery] = {}
        self.fates: dict[int, str] = {}
        self.frames: list[tuple[str, int, bool]] = []

    def deliver(self, body: bytes, results: int | None = None) -> "FakeDelivery":
        """A delivery of ``body``; ``results``: the count its sender put in its headers."""
        headers = {} if results is None else {topology.RESULTS_COUNT_HEADER: results}
        delivery = FakeDelivery(body, next(self._tags), self, headers=headers)
        self.open[delivery.delivery_tag] = delivery
        return delivery

    def settle(self, how: str, tag: int, multiple: bool) -> None:
        self.frames.append((how, tag, multiple))
        tags = [t for t in self.open if t <= tag] if multiple else [tag]
        for settled in tags:
            assert settled not in self.fates, f"delivery {settled} settled twice"
            self.fates[settled] = how
            del self.open[settled]


@dataclass(eq=False)
class FakeDelivery:
    body: bytes
    delivery_tag: int
    channel: FakeChannel
    processed: bool = False
    headers: dict[str, Any] = field(default_factory=dict)

    async def ack(self, multiple: bool = False) -> None:
        self._settle("ack", multiple)

    async def reject(self, requeue: bool = False) -> None:
        self._settle("requeue" if requeue else "reject", False)

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        self._settle("requeue" if requeue else "reject", multiple)

    def _settle(self, how: str, multiple: bool) -> None:
        self.processed = True
        self.channel.settle(how, self.delivery_tag, multiple)


@dataclass
class FakeWriter:
    """Every message id below ``unknown_from`` exists, in mailing ``id // 100``."""

    unknown_from: int = 1_000
    failures: list[StatusError] = field(default_factory=list)
    """Raised by the next writes, one each, before writes succeed."""
    batches: list[Columns] = field(default_factory=list)
    finished: list[list[int]] = field(default_factory=list)
    finish_failures: list[Exception] = field(default_factory=list)

    async def write(self, batch: Columns) -> Written:
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(batch)
        known = frozenset(i for i in batch.ids if i < self.unknown_from)
        return Written(known, frozenset(i // 100 for i in known), updated=len(known))

    async def finish(self, mailing_ids: list[int]) -> list[int]:
        if self.finish_failures:
            raise self.finish_failures.pop(0)
        self.finished.append(mailing_ids)
        return mailing_ids


def body(message_id: int, status: str = "sent", **fields: Any) -> bytes:
    result = Result.model_validate(
        {"message_id": message_id, "status": status, "attempts": 1, **fields}
    )
    return result.model_dump_json().encode()


def batch_body(*message_ids: int) -> bytes:
    """Sent results of ``message_ids`` in one body, as a sender publishes them."""
    results = [Result.model_validate_json(body(i)) for i in message_ids]
    return ResultBatch(results=results).model_dump_json().encode()
