"""Results to the status service in batches: one publish and one confirm for many results.

One result per publish cost the sender a publish, three frames and a confirm per message, and
RabbitMQ an enqueue, a delivery and an ack on the results queue: about a fifth of the CPU the
whole pipeline spent per message. Here one publish is in flight at a time, and every result
reported while it waits for its confirm goes into the next one. Batches so grow with the load
and add no wait without it: a result reported to an idle sender goes out at once.
"""

import asyncio
from typing import Any

from shared import topology
from shared.broker import BrokerError, Publisher
from shared.logs import get_logger
from shared.messages import MAX_RESULTS_PER_BATCH, Result, ResultBatch

log = get_logger(__name__)

_Waiting = tuple[Result, asyncio.Future[None]]


class Reports:
    """Results handed in by many handlers, published together."""

    def __init__(self, publisher: Publisher, max_batch: int = MAX_RESULTS_PER_BATCH) -> None:
        self._publisher = publisher
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._flushing: asyncio.Task[None] | None = None

    async def report(self, result: Result) -> None:
        """Return once the publish that carries ``result`` is confirmed.

        Raises :class:`BrokerError` if it was not: the caller then does not ack its work
        message, exactly as with a publish of its own. The result of a caller cancelled
        meanwhile (past the stop timeout) may still be published: it is a true one. Its work
        message goes back to the queue all the same, and is skipped if the status service
        wrote the result first, or sent again otherwise, within the bound on a stop's
        duplicates (SPEC §5).
        """
        confirmed = asyncio.get_running_loop().create_future()
        self._waiting.append((result, confirmed))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="sender-results")
        await confirmed

    async def aclose(self, timeout_s: float) -> None:
        """Let the publish in progress and the results still waiting go out, for at most
        ``timeout_s``; what is left then fails for its callers, unpublished."""
        flushing = self._flushing
        if flushing is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(flushing)
        except TimeoutError:
            flushing.cancel()
            await asyncio.gather(flushing, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._publish(batch)
        except BaseException:
            # Cancelled (a stop past its timeout): nobody may wait for ever, the results not
            # yet taken included.
            batch, self._waiting = self._waiting, []
            _settle(batch, "the results publish was stopped")
            raise
        finally:
            self._flushing = None

    async def _publish(self, batch: list[_Waiting]) -> None:
        body = ResultBatch(results=[result for result, _ in batch])
        try:
            await self._publisher.publish(
                topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, body, _size(batch)
            )
        except BrokerError as exc:
            _settle(batch, str(exc))
        except Exception as exc:
            # A bug: its callers nack and RabbitMQ delivers their work again; the next batch
            # still goes out.
            log.exception("results.publish_crashed", count=len(batch))
            _settle(batch, f"the results publish crashed: {type(exc).__name__}")
        except BaseException:
            _settle(batch, "the results publish was stopped")
            raise
        else:
            _settle(batch, None)


def _size(batch: list[_Waiting]) -> dict[str, Any]:
    # The status service closes its batches on the results they hold, and reads how many a
    # delivery holds here, before parsing it.
    return {topology.RESULTS_COUNT_HEADER: len(batch)}


def _settle(batch: list[_Waiting], error: str | None) -> None:
    for _, confirmed in batch:
        if confirmed.done():  # its caller was cancelled
            continue
        if error is None:
            confirmed.set_result(None)
        else:
            # One exception each: an instance raised in many tasks would share one traceback.
            confirmed.set_exception(BrokerError(error))
