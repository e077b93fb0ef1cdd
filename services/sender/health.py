"""What a sender's ``/readyz`` checks: both its broker connections, its consumer of the work
queue, and the database its check before every call reads."""

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topology
from shared.consumers import Consumption, consumer_check
from shared.health import Check, broker_check, database_check, is_open
from shared.settings import HealthSettings


def checks(
    settings: HealthSettings,
    *,
    consuming: AbstractRobustConnection,
    publishing: AbstractRobustConnection,
    engine: AsyncEngine,
    deliveries: Consumption,
    prefetch: int,
) -> dict[str, Check]:
    """By name: ``broker`` (the consuming connection and the publishing one),
    ``consumer:mailer.work`` and ``database``."""
    return {
        "broker": broker_check(consuming=is_open(consuming), publishing=is_open(publishing)),
        f"consumer:{topology.WORK_QUEUE}": consumer_check(
            publishing,
            topology.WORK_QUEUE,
            deliveries,
            prefetch=prefetch,
            stall_s=settings.health_consumer_stall_s,
        ),
        "database": database_check(engine),
    }
