"""One provider call over httpx: the request the contract asks for, and every failure caught."""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.sender.logic import Verdict
from services.sender.provider import Provider
from shared.messages import Work
from tests.sender.helpers import TEXT

TOKEN = "provider-unit-token-31337"
WORK = Work(
    message_id=42,
    mailing_id=7,
    client_id=9,
    phone="79001234567",
    text=TEXT,
    deadline_at=datetime.now(UTC) + timedelta(hours=1),
)

Handler = Callable[[httpx.Request], httpx.Response]


def _provider(handler: Callable[[httpx.Request], object]) -> Provider:
    client = httpx.AsyncClient(
        base_url="http://provider.test/v1",
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    return Provider(client, lambda: datetime.now(UTC))


async def test_posts_the_message_as_the_contract_says() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "message": "OK"})

    outcome = await _provider(answer).send(WORK, timeout_s=5)

    assert outcome.verdict is Verdict.SENT
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", "http://provider.test/v1/send/42")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.content)
    assert body == {"id": 42, "phone": 79001234567, "text": TEXT}
    assert type(body["phone"]) is int
    assert body["text"].encode() == TEXT.encode()  # byte for byte, emoji and quotes included


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("dropped"),  # what AiohttpTransport makes of a dropped connection
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("cut"),
        httpx.ReadTimeout("slow"),
    ],
)
async def test_transport_errors_are_transient(error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    outcome = await _provider(fail).send(WORK, timeout_s=5)

    assert outcome.verdict is Verdict.TRANSIENT
    assert outcome.error == f"transport error: {type(error).__name__}"


async def test_a_slow_answer_is_cut_off_at_the_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200, json={"code": 0})

    started = asyncio.get_running_loop().time()
    outcome = await _provider(slow).send(WORK, timeout_s=0.3)

    assert asyncio.get_running_loop().time() - started < 1
    assert (outcome.verdict, outcome.error) == (Verdict.TRANSIENT, "no answer within 0.3 s")


async def test_retry_after_is_passed_on() -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "4"})

    outcome = await _provider(busy).send(WORK, timeout_s=5)

    assert (outcome.verdict, outcome.retry_after_s) == (Verdict.TRANSIENT, 4.0)
