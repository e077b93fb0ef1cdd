"""What a sender's ``/readyz`` checks: both its broker connections, its consumer of the work
queue, and the database its check before every call reads."""

from aio_pika.abc import AbstractRobustConnection
from faststream.rabbit import RabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topology
from shared.consumers import Consumption, consumer_check
from shared.health import Check, Connected, broker_check, database_check, is_open
from shared.settings import HealthSettings


def checks(
    settings: HealthSettings,
    *,
    broker: RabbitBroker,
    connection: AbstractRobustConnection,
    engine: AsyncEngine,
    deliveries: Consumption,
    prefetch: int,
) -> dict[str, Check]:
    """By name: ``broker`` (FastStream's consuming connection and the publishing one),
    ``consumer:mailer.work`` and ``database``."""
    # Half the check's time, so that a connection being recovered reads as down, not as a
    # check without an answer.
    consuming = _pinged(broker, settings.health_check_timeout_s / 2)
    return {
        "broker": broker_check(consuming=consuming, publishing=is_open(connection)),
        f"consumer:{topology.WORK_QUEUE}": consumer_check(
            connection,
            topology.WORK_QUEUE,
            deliveries,
            prefetch=prefetch,
            stall_s=settings.health_consumer_stall_s,
        ),
        "database": database_check(engine),
    }


def _pinged(broker: RabbitBroker, timeout_s: float) -> Connected:
    # FastStream keeps its connection to itself; ping() is how it says whether it is up.
    async def connected() -> bool:
        return await broker.ping(timeout=timeout_s)

    return connected
