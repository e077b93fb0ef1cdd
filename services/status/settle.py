"""Telling RabbitMQ what became of deliveries: acks, requeues and rejects that never raise.

A settle that fails means the channel is gone, and with it every delivery still unacked on
it: RabbitMQ hands those out again, and writing a result a second time changes nothing. So a
failure here is logged, not raised.
"""

from collections.abc import Iterable

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError

from shared.logs import get_logger

log = get_logger(__name__)

# aio-pika raises ChannelInvalidStateError (a RuntimeError) on a closed channel.
_CHANNEL_GONE = (AMQPError, RuntimeError, OSError)


def highest_per_channel(
    deliveries: Iterable[AbstractIncomingMessage],
) -> list[AbstractIncomingMessage]:
    """The delivery with the highest tag on each channel among ``deliveries``.

    A robust reconnect brings a new channel whose tags start from 1 again, so one batch may
    hold deliveries of two channels, and a tag only means something on its own channel.
    """
    highest: dict[int, AbstractIncomingMessage] = {}
    for delivery in deliveries:
        seen = highest.get(id(delivery.channel))
        if seen is None or (delivery.delivery_tag or 0) > (seen.delivery_tag or 0):
            highest[id(delivery.channel)] = delivery
    return list(highest.values())


async def ack_all(deliveries: Iterable[AbstractIncomingMessage]) -> None:
    """Ack them with one ``multiple`` frame per channel, on its highest tag.

    ``multiple`` covers every unsettled delivery up to that tag on the channel. Batches are
    settled one after another in arrival order, and a batch's rejects go first, so the
    deliveries it covers are exactly these.
    """
    try:
        for delivery in highest_per_channel(deliveries):
            await delivery.ack(multiple=True)
    except _CHANNEL_GONE as exc:
        log.warning("delivery.settle_failed", error=type(exc).__name__)


async def requeue_all(deliveries: Iterable[AbstractIncomingMessage]) -> None:
    """Give them back to their queue, one ``multiple`` nack per channel (as :func:`ack_all`)."""
    try:
        for delivery in highest_per_channel(deliveries):
            await delivery.nack(multiple=True, requeue=True)
    except _CHANNEL_GONE as exc:
        log.warning("delivery.settle_failed", error=type(exc).__name__)


async def requeue_each(deliveries: Iterable[AbstractIncomingMessage]) -> int:
    """Give back the ones not settled yet, one by one (after a failure part-way); how many."""
    count = 0
    for delivery in deliveries:
        if delivery.processed:
            continue
        count += 1
        try:
            await delivery.nack(requeue=True)
        except _CHANNEL_GONE as exc:
            log.warning("delivery.settle_failed", error=type(exc).__name__)
    return count


async def reject(delivery: AbstractIncomingMessage) -> None:
    """Reject without requeue: the queue dead-letters it to the poison queue, kept there."""
    try:
        await delivery.reject(requeue=False)
    except _CHANNEL_GONE as exc:
        log.warning("delivery.settle_failed", error=type(exc).__name__)
