"""Control events from the API: a mailing created or changed wakes the planner at once."""

from collections.abc import Callable
from functools import partial

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from shared import topology
from shared.logs import get_logger
from shared.messages import ControlEvent

log = get_logger(__name__)

WAKING_KINDS = frozenset({"mailing_created", "mailing_changed"})
"""Events that may make a mailing due now; the others are the senders' business."""


async def listen(connection: AbstractRobustConnection, wake: Callable[[], None]) -> AbstractChannel:
    """Consume this replica's control queue, calling ``wake`` on the events that need a tick.

    Returns the channel; closing it stops listening. Events are hints, consumed without acks:
    one lost in a broker restart delays a mailing by one tick interval at most.
    """
    channel = await connection.channel()
    queue = await topology.declare_control_queue(channel)
    await queue.consume(partial(_on_event, wake=wake), no_ack=True)
    return channel


async def _on_event(message: AbstractIncomingMessage, *, wake: Callable[[], None]) -> None:
    try:
        event = ControlEvent.model_validate_json(message.body)
    except ValidationError:
        log.warning("control.unreadable", size=len(message.body))
        return
    if event.kind in WAKING_KINDS:
        log.debug("control.wake", kind=event.kind, mailing_id=event.mailing_id)
        wake()
