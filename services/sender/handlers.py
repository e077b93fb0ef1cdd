"""The FastStream subscriber on the work queue: parse, process, then ack, nack or reject."""

import asyncio
from collections.abc import Awaitable

from aio_pika.exceptions import AMQPError
from faststream import AckPolicy
from faststream.rabbit import QueueType, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError

from services.sender.worker import Sender
from shared import topology
from shared.broker import BrokerError, cancelled_by_broker
from shared.consumers import Deliveries
from shared.logs import bind_ids, clear_ids, get_logger
from shared.messages import Work

log = get_logger(__name__)

# declare=False: shared.topology declared the queue with all its arguments; a declaration
# from here with other arguments would be refused (406) and close the channel.
WORK_QUEUE = RabbitQueue(topology.WORK_QUEUE, QueueType.QUORUM, declare=False)


def subscribe(broker: RabbitBroker, sender: Sender, deliveries: Deliveries) -> None:
    """Consume the work queue with ``sender``; every ack is explicit (AckPolicy.MANUAL).

    ``deliveries`` counts what arrives and what is done with, for the readiness check.
    """

    @broker.subscriber(
        WORK_QUEUE, ack_policy=AckPolicy.MANUAL, no_reply=True, decoder=_the_message_itself
    )
    async def on_work(message: RabbitMessage) -> None:
        deliveries.note_received()
        try:
            await handle(sender, message)
        finally:
            # Settled, or given up on (a stop): either way no longer held by this sender.
            deliveries.note_settled()


async def _the_message_itself(message: RabbitMessage) -> RabbitMessage:
    # Without FastDepends (apply_types=False) the handler is called with what the decoder
    # returns: the message itself, so that the handler can ack it and parse its body.
    return message


async def handle(sender: Sender, message: RabbitMessage) -> None:
    """One delivery: acked only once its results and retries are confirmed by RabbitMQ."""
    clear_ids()
    work = parse_work(message.body)
    if work is None:
        # Poison: retrying cannot help. The work queue dead-letters it to mailer.work.dead.
        log.error("work.poison", redelivered=message.raw_message.redelivered)
        await _settle(message.reject(requeue=False))
        return
    bind_ids(message_id=work.message_id, mailing_id=work.mailing_id, client_id=work.client_id)
    try:
        await sender.process(work)
    except BrokerError as exc:
        log.warning("work.requeued", error=str(exc))
        await _settle(message.nack(requeue=True))
        return
    except Exception:
        # A bug or an unforeseen failure: deliver again. The quorum queue's delivery limit
        # dead-letters a message that keeps failing, so it cannot loop for ever.
        log.exception("work.crashed")
        await _settle(message.nack(requeue=True))
        return
    await _settle(message.ack())


def parse_work(body: bytes) -> Work | None:
    """The work message, or None if the body is not one (phone included: it is sent as an
    integer)."""
    try:
        work = Work.model_validate_json(body)
    except ValidationError:
        return None
    return work if work.phone.isdigit() else None


async def _settle(action: Awaitable[None]) -> None:
    # The channel may have closed meanwhile (broker restart); RabbitMQ then redelivers the
    # message on its own and the database check stops a second send of a finished one.
    try:
        await action
    except (AMQPError, RuntimeError, OSError) as exc:
        log.warning("work.settle_failed", error=type(exc).__name__)
    except asyncio.CancelledError:
        if not cancelled_by_broker():
            raise
        log.warning("work.settle_failed", error="connection closed")
