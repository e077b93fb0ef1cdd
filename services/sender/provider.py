"""The provider's HTTP API (SPEC §4): one call per attempt, always answered with an Outcome."""

import asyncio
from collections.abc import Callable
from datetime import datetime

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import SecretStr

from services.sender.logic import Outcome, classify, transport_failure
from shared.messages import Work

# Errors that mean "no usable answer". AiohttpTransport maps most aiohttp errors to httpx ones
# (a dropped connection even becomes ConnectTimeout), but not every one, hence aiohttp's too.
_NO_ANSWER = (httpx.TransportError, aiohttp.ClientError, OSError, TimeoutError)


def provider_client(base_url: str, token: SecretStr, pool_size: int) -> httpx.AsyncClient:
    """httpx over aiohttp, its pool sized to the calls in flight so none waits for a slot."""
    limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
    return httpx.AsyncClient(
        base_url=base_url,
        transport=AiohttpTransport(limits=limits),
        headers={"Authorization": f"Bearer {token.get_secret_value()}"},
        # Every request passes its own timeout; this only guards a call that forgets to.
        timeout=httpx.Timeout(10.0),
    )


class Provider:
    """Posts one message to ``{provider_url}/send/{msgId}``."""

    def __init__(self, client: httpx.AsyncClient, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._clock = clock

    async def send(self, work: Work, timeout_s: float) -> Outcome:
        """Call the provider once, for at most ``timeout_s`` in all, and say what came of it."""
        body = {"id": work.message_id, "phone": int(work.phone), "text": work.text}
        try:
            # httpx's timeouts bound each phase (connect, write, each read) on its own; the
            # outer one bounds the whole call, so that it ends by the deadline.
            async with asyncio.timeout(timeout_s):
                response = await self._client.post(
                    f"/send/{work.message_id}", json=body, timeout=httpx.Timeout(timeout_s)
                )
        except _NO_ANSWER as exc:
            return transport_failure(exc, timeout_s)
        retry_after = response.headers.get("Retry-After")
        return classify(response.status_code, response.content, retry_after, self._clock())
