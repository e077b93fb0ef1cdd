"""Probing a service's health server as an orchestrator would, and losing a consumer on purpose."""

from typing import Any

import httpx
from aio_pika.abc import AbstractChannel

from services.stack.network import free_port
from shared.settings import HealthSettings
from tests.waiting import eventually

PROBE_TIMEOUT_S = 5.0


def health_settings(**fields: Any) -> HealthSettings:
    """A health server on a free port of this host, with these settings; no ``.env`` read."""
    return HealthSettings(_env_file=None, **{"health_port": free_port(), **fields})


async def probe(settings: HealthSettings, path: str) -> tuple[int, dict[str, Any]]:
    """``GET path`` on the health server: its HTTP status and JSON body."""
    url = f"http://127.0.0.1:{settings.health_port}{path}"
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
        response = await client.get(url)
    return response.status_code, response.json()


async def readiness_until(
    settings: HealthSettings, status_code: int, timeout_s: float = 15.0
) -> dict[str, Any]:
    """The ``/readyz`` body once it answers ``status_code``; fails after ``timeout_s``.

    A server not listening yet (a service still connecting) counts as no answer so far.
    """

    async def ready() -> tuple[int, dict[str, Any]]:
        try:
            return await probe(settings, "/readyz")
        except httpx.TransportError as exc:
            return 0, {"error": type(exc).__name__}

    _, body = await eventually(ready, lambda answer: answer[0] == status_code, timeout_s, 0.1)
    return body


async def lose_consumer(channel: AbstractChannel, consumer_tag: str) -> None:
    """Cancel one consumer on the wire, behind its library's back.

    The broker forgets the consumer; the connection and the channel stay open, and aio-pika
    still lists the consumer as its own, so it neither recovers it nor reports anything:
    what a consumer lost to a broker restart looked like from inside the process.
    """
    underlay = await channel.get_underlay_channel()
    await underlay.basic_cancel(consumer_tag)
