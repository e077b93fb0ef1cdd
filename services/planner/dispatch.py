"""Dispatching pending messages: the message table is the outbox of the work queue.

A batch is claimed, published with confirms, and marked ``queued`` in one transaction. If the
planner dies between the publish and the commit, the rows are still ``pending`` and the next
tick publishes them again under the same message ids: a sender may see a message twice, never
two ids for one message. Each copy names its transaction (``dispatch_xid``), and a sender sends
only the one whose transaction committed: the row names it too.
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import Row, TextClause
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.contextvars import bound_contextvars

from services.planner import sql
from shared import topology
from shared.broker import PUBLISH_CONCURRENCY, BrokerError
from shared.logs import get_logger
from shared.messages import Work

log = get_logger(__name__)


class WorkPublisher(Protocol):
    """What dispatching needs of :class:`shared.broker.Publisher`."""

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: BaseModel,
        headers: dict[str, Any] | None = None,
    ) -> None: ...

    async def ready_count(self, queue: str) -> int: ...


async def dispatchable(engine: AsyncEngine) -> dict[int, bool]:
    """Running mailings whose deadline has not passed, by id: whether the audience is
    complete. One still being materialised is listed only until its first batch is out."""
    async with engine.connect() as connection:
        rows = (await connection.execute(sql.DISPATCHABLE)).all()
    return {row.id: row.complete for row in rows}


def work_of(mailing_id: int, row: Row[Any]) -> Work:
    """The next attempt of one claimed message; its deadline is the mailing's ``end_at``."""
    return Work(
        message_id=row.message_id,
        mailing_id=mailing_id,
        client_id=row.client_id,
        phone=row.phone,
        text=row.text,
        deadline_at=row.end_at,
        attempt=row.attempts + 1,
        last_error=row.last_error,
        dispatch=row.dispatches + 1,
        dispatch_xid=row.dispatch_xid,
    )


@dataclass(frozen=True)
class Batch:
    """What one dispatch batch did."""

    published: int
    """Messages published with a confirm, now ``queued``."""
    failed: int
    """Messages whose publish failed; still ``pending``, for a later tick."""


async def dispatch_batch(
    engine: AsyncEngine, publisher: WorkPublisher, mailing_id: int, batch_size: int
) -> Batch:
    """Publish up to ``batch_size`` pending messages of the mailing, oldest first.

    Messages whose publish was confirmed become ``queued``; the others stay ``pending``.
    """
    with bound_contextvars(mailing_id=mailing_id):
        params = {"mailing_id": mailing_id, "batch_size": batch_size}
        async with engine.begin() as connection:
            return await publish_claimed(connection, publisher, mailing_id, sql.CLAIM_BATCH, params)


async def publish_claimed(
    connection: AsyncConnection,
    publisher: WorkPublisher,
    mailing_id: int,
    claim: TextClause,
    params: Mapping[str, object],
) -> Batch:
    """Claim messages with ``claim``, publish them and mark the confirmed ones ``queued``.

    Runs in the caller's transaction, which must commit for the batch to count: until then
    the rows are ``pending`` for everyone else, and a rollback publishes them again later.
    """
    started = time.monotonic()
    rows = (await connection.execute(claim, params)).all()
    works = [work_of(mailing_id, row) for row in rows]
    published, failure = await _publish_each(publisher, works)
    await _mark_queued(connection, published)
    if published:
        duration_ms = round((time.monotonic() - started) * 1000)
        log.info("dispatch.batch", count=len(published), duration_ms=duration_ms)
    batch = Batch(published=len(published), failed=len(works) - len(published))
    if failure is not None:
        log.warning("dispatch.publish_failed", count=batch.failed, error=str(failure))
    return batch


async def _publish_each(
    publisher: WorkPublisher, works: Sequence[Work]
) -> tuple[list[int], BrokerError | None]:
    """Publish concurrently; the ids whose publish was confirmed, and the first failure.

    Unlike ``Publisher.publish_many`` this says which publishes went through, so a broker
    failure mid-batch re-sends only the unconfirmed messages later, not the whole batch.
    """
    gate = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def one(work: Work) -> None:
        async with gate:
            await publisher.publish(topology.WORK_EXCHANGE, topology.WORK_ROUTING_KEY, work)

    outcomes = await asyncio.gather(*(one(work) for work in works), return_exceptions=True)
    published: list[int] = []
    failure: BrokerError | None = None
    for work, outcome in zip(works, outcomes, strict=True):
        if outcome is None:
            published.append(work.message_id)
        elif isinstance(outcome, BrokerError):
            failure = failure or outcome
        else:
            raise outcome
    return published, failure


async def _mark_queued(connection: AsyncConnection, message_ids: list[int]) -> None:
    if message_ids:
        await connection.execute(sql.MARK_QUEUED, {"ids": message_ids})
