"""Results to the status service in batches: one publish and one confirm for many results.

One result per publish cost the sender a publish, three frames and a confirm per message, and
RabbitMQ an enqueue, a delivery and an ack on the results queue: about a fifth of the CPU the
whole pipeline spent per message. Here one publish is in flight at a time, and every result
reported while it waits for its confirm goes into the next one. Batches so grow with the load
and add no wait without it: a result reported to an idle sender goes out at once.
"""

import asyncio

from shared import topology
from shared.broker import BrokerError, Publisher
from shared.messages import MAX_RESULTS_PER_BATCH, Result, ResultBatch

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
        message, exactly as with a publish of its own. A caller cancelled meanwhile (a stop)
        may still see its result published; it is a true one, and a redelivered work message
        finds the message final in the database.
        """
        confirmed = asyncio.get_running_loop().create_future()
        self._waiting.append((result, confirmed))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="sender-results")
        await confirmed

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._publish(batch)
        finally:
            self._flushing = None

    async def _publish(self, batch: list[_Waiting]) -> None:
        body = ResultBatch(results=[result for result, _ in batch])
        try:
            await self._publisher.publish(
                topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, body
            )
        except BrokerError as exc:
            _settle(batch, str(exc))
        except BaseException:
            # This task is being cancelled (the event loop closing): nobody may wait for ever.
            _settle(batch, "the results publish was interrupted")
            raise
        else:
            _settle(batch, None)


def _settle(batch: list[_Waiting], error: str | None) -> None:
    for _, confirmed in batch:
        if confirmed.done():  # its caller was cancelled
            continue
        if error is None:
            confirmed.set_result(None)
        else:
            # One exception each: an instance raised in many tasks would share one traceback.
            confirmed.set_exception(BrokerError(error))
