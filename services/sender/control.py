"""Mailings cancelled or deleted while this sender runs, heard on the control fanout.

Only a shortcut: the database lookup before every call is what makes a cancel binding, also
for a replica started after it. Knowing a mailing is stopped just spares that lookup.
"""

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from services.sender.logic import Gate
from shared import topology
from shared.logs import get_logger
from shared.messages import ControlEvent

log = get_logger(__name__)

_STOPPING_KINDS = {"mailing_cancelled": Gate.CANCEL, "mailing_deleted": Gate.DELETED}
# Ids of stopped mailings kept; past this the memory starts over (the database still knows).
_REMEMBERED = 100_000


class ControlListener:
    """Remembers which mailings were cancelled or deleted."""

    def __init__(self) -> None:
        self._stopped: dict[int, Gate] = {}

    def stopped(self, mailing_id: int) -> Gate | None:
        """``Gate.CANCEL`` or ``Gate.DELETED`` for a mailing known to be stopped, else None."""
        return self._stopped.get(mailing_id)

    async def listen(self, connection: AbstractRobustConnection) -> None:
        """Consume this replica's own control queue on a channel of ``connection``."""
        channel = await connection.channel()
        queue = await topology.declare_control_queue(channel)
        # No ack needed: the queue dies with this replica and the events are hints.
        await queue.consume(self.on_event, no_ack=True)

    async def on_event(self, message: AbstractIncomingMessage) -> None:
        try:
            event = ControlEvent.model_validate_json(message.body)
        except ValidationError:
            log.warning("control.unreadable")
            return
        self.note(event)

    def note(self, event: ControlEvent) -> None:
        """Remember the mailing if the event stops it."""
        gate = _STOPPING_KINDS.get(event.kind)
        if gate is None or event.mailing_id is None:
            return
        if len(self._stopped) >= _REMEMBERED:
            self._stopped.clear()
        # A deletion outranks an earlier cancel: the rows are gone, nothing is left to report.
        self._stopped[event.mailing_id] = gate
        log.info("control.mailing_stopped", mailing_id=event.mailing_id, kind=event.kind)
