"""What the status service's ``/readyz`` checks: its broker connection, its consumers, its
database."""

import time
from dataclasses import dataclass, field

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.status.batcher import Batcher
from shared.consumers import consumer_check
from shared.health import Check, broker_check, database_check, is_open
from shared.settings import HealthSettings


@dataclass
class QueueConsumption:
    """The status service's own view of its consumer on one queue."""

    queue: str
    batcher: Batcher
    last_delivery_at: float = field(default_factory=time.monotonic)

    def note_delivery(self) -> None:
        self.last_delivery_at = time.monotonic()

    @property
    def in_flight(self) -> int:
        # Deliveries stay unacked until their batch is written: the batcher holds them all.
        return self.batcher.held(self.queue)


def checks(
    settings: HealthSettings,
    connection: AbstractRobustConnection,
    engine: AsyncEngine,
    consumptions: list[QueueConsumption],
    prefetch: int,
) -> dict[str, Check]:
    """By name: ``broker``, ``database`` and ``consumer:<queue>`` for each consumed queue."""
    found = {"broker": broker_check(rabbitmq=is_open(connection))}
    for consumption in consumptions:
        found[f"consumer:{consumption.queue}"] = consumer_check(
            connection,
            consumption.queue,
            consumption,
            prefetch=prefetch,
            stall_s=settings.health_consumer_stall_s,
        )
    found["database"] = database_check(engine)
    return found
