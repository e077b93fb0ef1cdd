"""Every exchange, queue and routing key of the mailer, and how they are declared.

One module, because RabbitMQ refuses (406, closing the channel) to re-declare a queue with other
arguments: every service declares the same things from here, at start-up, before it consumes or
publishes. Every argument is passed explicitly, so RabbitMQ 3.10 (no default delivery limit) and
4.x (a default of 20) behave alike.

    planner ──► work ──► [mailer.work] ──► sender ──► results ──► [mailer.results] ──► status
                  ▲                          │
                  └── [mailer.retry.<N>s] ◄──┘  (a per-delay queue whose TTL dead-letters back)
    [mailer.work] ── over the delivery limit ──► dead ──► [mailer.work.dead] ──► status
    status, on a result or dead letter it cannot read ──► poison ──► [mailer.poison] (kept)
    api ──► control (fanout) ──► one auto-deleted queue per planner and sender replica
"""

from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, ExchangeType

WORK_EXCHANGE = "mailer.work"
WORK_QUEUE = "mailer.work"
WORK_ROUTING_KEY = "work"

RESULTS_EXCHANGE = "mailer.results"
RESULTS_QUEUE = "mailer.results"
RESULTS_ROUTING_KEY = "result"
RESULTS_COUNT_HEADER = "results"
"""How many results a delivery of the results queue holds; absent: one."""

DEAD_EXCHANGE = "mailer.dead"
WORK_DEAD_QUEUE = "mailer.work.dead"

POISON_EXCHANGE = "mailer.poison"
POISON_QUEUE = "mailer.poison"

CONTROL_EXCHANGE = "mailer.control"

RETRY_EXCHANGE = "mailer.retry"
# Fixed delays: a queue holds one TTL, since a message with a shorter per-message TTL behind a
# longer one would wait at the head. Jitter is drawn between neighbouring delays.
RETRY_DELAYS_S = (1, 2, 5, 10, 30, 60, 120)

# A work message redelivered this many times (a sender crashing on it every time) is poison:
# RabbitMQ dead-letters it instead of looping for ever.
WORK_DELIVERY_LIMIT = 10
RESULTS_DELIVERY_LIMIT = 10


def retry_queue(delay_s: int) -> str:
    return f"mailer.retry.{delay_s}s"


def _quorum(**arguments: Any) -> dict[str, Any]:
    return {"x-queue-type": "quorum", **arguments}


def _dead_lettering_to(exchange: str, routing_key: str | None = None) -> dict[str, Any]:
    # At-least-once dead-lettering (quorum only) needs reject-publish overflow; without it a
    # message can be lost between the two queues if a broker node fails mid-way.
    args: dict[str, Any] = {
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    if routing_key is not None:
        args["x-dead-letter-routing-key"] = routing_key
    return args


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any]
    exchange: str
    routing_key: str


QUEUES = (
    QueueSpec(
        WORK_QUEUE,
        _quorum(**_dead_lettering_to(DEAD_EXCHANGE), **{"x-delivery-limit": WORK_DELIVERY_LIMIT}),
        WORK_EXCHANGE,
        WORK_ROUTING_KEY,
    ),
    QueueSpec(
        RESULTS_QUEUE,
        _quorum(
            **_dead_lettering_to(POISON_EXCHANGE), **{"x-delivery-limit": RESULTS_DELIVERY_LIMIT}
        ),
        RESULTS_EXCHANGE,
        RESULTS_ROUTING_KEY,
    ),
    QueueSpec(
        WORK_DEAD_QUEUE,
        _quorum(**_dead_lettering_to(POISON_EXCHANGE), **{"x-delivery-limit": 10}),
        DEAD_EXCHANGE,
        "",
    ),
    QueueSpec(POISON_QUEUE, _quorum(), POISON_EXCHANGE, ""),
    *(
        QueueSpec(
            retry_queue(delay_s),
            _quorum(
                **_dead_lettering_to(WORK_EXCHANGE, WORK_ROUTING_KEY),
                **{"x-message-ttl": delay_s * 1000},
            ),
            RETRY_EXCHANGE,
            str(delay_s),
        )
        for delay_s in RETRY_DELAYS_S
    ),
)

_EXCHANGES = (
    (WORK_EXCHANGE, ExchangeType.DIRECT),
    (RESULTS_EXCHANGE, ExchangeType.DIRECT),
    (RETRY_EXCHANGE, ExchangeType.DIRECT),
    (DEAD_EXCHANGE, ExchangeType.FANOUT),
    (POISON_EXCHANGE, ExchangeType.FANOUT),
    (CONTROL_EXCHANGE, ExchangeType.FANOUT),
)


async def declare(channel: AbstractChannel) -> dict[str, AbstractExchange]:
    """Declare every exchange, queue and binding (idempotent); returns the exchanges by name."""
    exchanges = {
        name: await channel.declare_exchange(name, kind, durable=True) for name, kind in _EXCHANGES
    }
    for spec in QUEUES:
        queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        await queue.bind(exchanges[spec.exchange], routing_key=spec.routing_key)
    return exchanges


async def declare_control_queue(channel: AbstractChannel) -> AbstractQueue:
    """A queue of this replica's own on the control fanout, gone when the replica is.

    Server-named, exclusive and classic on purpose: control events only matter to replicas
    alive now; one started later reads the current state from the database instead.
    """
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    exchange = await channel.declare_exchange(CONTROL_EXCHANGE, ExchangeType.FANOUT, durable=True)
    await queue.bind(exchange)
    return queue
