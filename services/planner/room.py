"""How much more work the work queue may take in one delivery tick.

The rest of a big mailing waits ``pending`` in the database, where it costs the broker no
memory and a cancel or a deadline takes it at no cost. The queue is read once per tick, and
only when there is something to dispatch: each read opens a channel for a passive declare.
"""

from dataclasses import dataclass, field

from services.planner.dispatch import WorkPublisher
from shared import topology
from shared.broker import BrokerError
from shared.logs import get_logger

log = get_logger(__name__)


@dataclass
class Room:
    """The messages the work queue may still take, for one tick.

    A batch goes while some room is left, whatever its size, so one planner overshoots the
    bound by less than a batch, and batches keep their size.
    """

    publisher: WorkPublisher
    limit: int
    """The queue's bound; 0 for none."""
    _left: int | None = field(default=None, init=False)
    """``None`` until read, and for good when there is no bound or it cannot be read."""
    _read: bool = field(default=False, init=False)

    async def has_some(self) -> bool:
        """Whether another batch may go."""
        if not self._read:
            self._read = True
            self._left = await self._read_left()
        return self._left is None or self._left > 0

    def took(self, count: int) -> None:
        """``count`` messages were published into the queue."""
        if self._left is not None:
            self._left -= count

    async def _read_left(self) -> int | None:
        if not self.limit:
            return None
        try:
            ready = await self.publisher.ready_count(topology.WORK_QUEUE)
        except BrokerError as exc:
            # The batch's publishes will say more; a bound that cannot be read holds nothing
            # back.
            log.warning("work_queue.unreadable", error=str(exc))
            return None
        if ready >= self.limit:
            log.info("dispatch.held", ready=ready, limit=self.limit)
        return self.limit - ready
