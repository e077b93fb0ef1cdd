"""Deliveries in, batches out: buffer, write once per batch, and only then settle with RabbitMQ.

One batch is written at a time, in arrival order, while the next one fills. A delivery is
acked only after its batch committed; if the database is unreachable the batch is held and
retried as it is, since a nack would count against the queue's delivery limit and, after ten,
dead-letter results the database never saw.
"""

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from aio_pika.abc import AbstractIncomingMessage
from structlog.contextvars import bound_contextvars

from services.status import settle
from services.status.errors import DatabaseUnavailable, StatusError
from services.status.merge import Columns, Parsed, columns, merge, parse_dead_work, parse_results
from services.status.sql import Written
from shared import topology
from shared.logs import get_logger
from shared.messages import MAX_RESULTS_PER_BATCH, Result

log = get_logger(__name__)

FIRST_RETRY_S = 0.1


class Writes(Protocol):
    """What a batch needs from the database (:class:`services.status.writer.Writer`)."""

    async def write(self, batch: Columns) -> Written: ...

    async def finish(self, mailing_ids: list[int]) -> list[int]: ...


@dataclass
class Counters:
    """Deliveries by fate since the start; logged on stop, read by tests."""

    received: int = 0
    batches: int = 0
    acked: int = 0
    rejected: int = 0
    requeued: int = 0
    updated: int = 0


@dataclass(frozen=True)
class _Entry:
    arrived_at: float
    queue: str
    delivery: AbstractIncomingMessage
    results: int
    """How many results it holds, as its sender said (see :func:`_results_in`)."""


def _results_in(delivery: AbstractIncomingMessage) -> int:
    # Read before the body is parsed, to size batches. Only a size: a wrong count makes a
    # batch larger or smaller, never changes what is written.
    count = (delivery.headers or {}).get(topology.RESULTS_COUNT_HEADER)
    if isinstance(count, int) and 1 <= count <= MAX_RESULTS_PER_BATCH:
        return count
    return 1


class Batcher:
    """Buffers deliveries and writes them when a batch is full or its first one waited long."""

    def __init__(
        self, writer: Writes, *, batch_size: int, flush_interval_s: float, retry_max_s: float
    ) -> None:
        self._writer = writer
        self._batch_size = batch_size
        self._interval_s = flush_interval_s
        self._retry_max_s = retry_max_s
        self._buffer: list[_Entry] = []
        self._buffered = 0
        """Results in the buffer."""
        self._writing: list[_Entry] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._database_down = False
        self.counters = Counters()

    def add(self, queue: str, delivery: AbstractIncomingMessage) -> None:
        """Buffer one delivery from ``queue`` (never blocks: the prefetch bounds the buffer)."""
        entry = _Entry(time.monotonic(), queue, delivery, _results_in(delivery))
        self._buffer.append(entry)
        self._buffered += entry.results
        self.counters.received += 1
        if len(self._buffer) == 1 or self._buffered >= self._batch_size:
            self._wake.set()

    def held(self, queue: str) -> int:
        """Deliveries from ``queue`` buffered or being written: received and not yet settled."""
        return sum(entry.queue == queue for entry in (*self._buffer, *self._writing))

    def stop(self) -> None:
        """Write what is buffered at once, then let :meth:`run` return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Write batch after batch until stopped and the buffer is empty."""
        while True:
            await self._until_due()
            batch = self._take()
            if not batch:
                return  # stopping, and nothing left
            self._writing = batch
            try:
                await self._flush_safely(batch)
            finally:
                self._writing = []

    def _take(self) -> list[_Entry]:
        """The oldest deliveries, up to a batch of results (at least one delivery)."""
        taken, results = 0, 0
        for entry in self._buffer:
            if taken and results + entry.results > self._batch_size:
                break
            taken, results = taken + 1, results + entry.results
        batch = self._buffer[:taken]
        del self._buffer[:taken]
        self._buffered -= results
        return batch

    async def _until_due(self) -> None:
        while not self._stopping.is_set() and self._buffered < self._batch_size:
            timeout_s = None
            if self._buffer:
                timeout_s = self._buffer[0].arrived_at + self._interval_s - time.monotonic()
                if timeout_s <= 0:
                    return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout_s)
            except TimeoutError:
                return

    async def _flush_safely(self, batch: list[_Entry]) -> None:
        started = time.perf_counter()
        try:
            parsed = await self._parse(batch)
            results = (result for _, held in parsed for result in held)
            written = await self._write(results) if parsed else None
        except Exception:
            # The database refused the batch, or a bug: keep consuming, and let the delivery
            # limit dead-letter the batch if it fails every time. Nothing was acked yet.
            log.exception("batch.failed", count=len(batch))
            await self._pause(self._retry_max_s)
            self.counters.requeued += await settle.requeue_each(e.delivery for e in batch)
            return
        if written is None:
            if parsed:  # the database stayed unreachable until a stop: give them back
                await settle.requeue_all(entry.delivery for entry, _ in parsed)
                self.counters.requeued += len(parsed)
            return
        acked = await self._settle(parsed, written)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "batch.written",
            count=acked,
            messages=len(written.known_ids),
            updated=written.updated,
            duration_ms=duration_ms,
        )
        try:
            await self._finish(written.mailing_ids)
        except Exception:
            # Acked already: the planner finishes mailings too, and so does the next batch.
            log.exception("mailing.finish_failed")

    async def _settle(self, parsed: list[tuple[_Entry, list[Result]]], written: Written) -> int:
        """Reject the deliveries that hold only results of unknown messages, then ack the rest
        with one frame; how many were acked.

        An unknown result beside known ones is logged and dropped with its delivery's ack:
        there is no row it could change (its mailing was deleted meanwhile), and rejecting
        the delivery would dead-letter the known ones with it.
        """
        good = []
        for entry, results in parsed:
            unknown = [r.message_id for r in results if r.message_id not in written.known_ids]
            for message_id in unknown:
                with bound_contextvars(message_id=message_id):
                    log.warning("result.rejected", queue=entry.queue, reason="unknown message")
            if len(unknown) < len(results):
                good.append(entry.delivery)
                continue
            await settle.reject(entry.delivery)
            self.counters.rejected += 1
        await settle.ack_all(good)
        self.counters.acked += len(good)
        self.counters.batches += 1
        self.counters.updated += written.updated
        return len(good)

    async def _parse(self, batch: list[_Entry]) -> list[tuple[_Entry, list[Result]]]:
        """The deliveries that hold results, in order, with them; the others are rejected."""
        parsed = []
        for entry in batch:
            held = _parse_entry(entry)
            if held is not None:
                for message_id in held.dropped:
                    # Acked with the others: rejecting the delivery would dead-letter them too.
                    log.warning(
                        "result.rejected",
                        queue=entry.queue,
                        reason="invalid result",
                        message_id=message_id,
                    )
                parsed.append((entry, held.results))
                continue
            # Never the body: it may hold a phone or a text.
            log.warning("result.rejected", queue=entry.queue, reason="invalid body")
            await settle.reject(entry.delivery)
            self.counters.rejected += 1
        return parsed

    async def _write(self, results: Iterable[Result]) -> Written | None:
        """The batch written, or ``None`` if the database stayed unreachable until a stop."""
        batch = columns(merge(results))
        pause_s = FIRST_RETRY_S
        # Once stopping with the database down, another try could hang for a connect timeout.
        while not (self._stopping.is_set() and self._database_down):
            try:
                written = await self._writer.write(batch)
            except DatabaseUnavailable as exc:
                self._database_down = True
                log.warning("database.unavailable", error=str(exc), retry_in_s=pause_s)
                await self._pause(pause_s)
                pause_s = min(pause_s * 2, self._retry_max_s)
                continue
            self._database_down = False
            return written
        log.warning("batch.given_back", count=len(batch.ids))
        return None

    async def _finish(self, mailing_ids: frozenset[int]) -> None:
        if not mailing_ids:
            return
        try:
            finished = await self._writer.finish(sorted(mailing_ids))
        except StatusError as exc:
            # The batch is committed; the planner finishes mailings too, and so does the next
            # batch that touches this one.
            log.warning("mailing.finish_failed", error=str(exc))
            return
        for mailing_id in finished:
            with bound_contextvars(mailing_id=mailing_id):
                log.info("mailing.finished")

    async def _pause(self, seconds: float) -> None:
        """Sleep, but no longer than until a stop is asked for."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return


def _parse_entry(entry: _Entry) -> Parsed | None:
    if entry.queue == topology.WORK_DEAD_QUEUE:
        result = parse_dead_work(entry.delivery.body)
        return None if result is None else Parsed([result], [])
    return parse_results(entry.delivery.body)
