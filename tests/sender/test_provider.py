"""One provider call over aiohttp: the request the contract asks for, and every failure caught.

The provider here is a real HTTP server in the test's loop, answering as each test says.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from pydantic import SecretStr

from services.sender.logic import Verdict
from services.sender.provider import Provider, provider_client
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

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Answer], Awaitable[Provider]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(answer)``: a provider answering every request with ``answer``."""
    runners: list[web.AppRunner] = []
    sessions = []

    async def start(answer: Answer) -> Provider:
        app = web.Application()
        app.router.add_post("/v1/send/{msg_id}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        session = provider_client(SecretStr(TOKEN), pool_size=4)
        sessions.append(session)
        return Provider(session, f"http://127.0.0.1:{port}/v1/", lambda: datetime.now(UTC))

    yield start
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()


async def test_posts_the_message_as_the_contract_says(serve: Serve) -> None:
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, dict(request.headers), await request.read()))
        return web.json_response({"code": 0, "message": "OK"})

    outcome = await (await serve(answer)).send(WORK, timeout_s=5)

    assert outcome.verdict is Verdict.SENT
    [(method, path, headers, raw)] = seen
    assert (method, path) == ("POST", "/v1/send/42")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert body == {"id": 42, "phone": 79001234567, "text": TEXT}
    assert type(body["phone"]) is int
    assert body["text"].encode() == TEXT.encode()  # byte for byte, emoji and quotes included
    assert "Привет".encode() in raw  # as UTF-8, not as \\u escapes


async def _drop(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def _cut_mid_body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": "100"})
    await response.prepare(request)
    await response.write(b'{"code": 0')
    assert request.transport is not None
    request.transport.close()
    return response


@pytest.mark.parametrize("answer", [_drop, _cut_mid_body], ids=["dropped", "cut mid-body"])
async def test_a_call_without_a_whole_answer_is_transient(serve: Serve, answer: Answer) -> None:
    outcome = await (await serve(answer)).send(WORK, timeout_s=5)

    assert outcome.verdict is Verdict.TRANSIENT
    assert outcome.error is not None
    assert outcome.error.startswith("transport error: ")


async def test_a_refused_connection_is_transient() -> None:
    session = provider_client(SecretStr(TOKEN), pool_size=1)
    try:
        # Port 9 (discard) is closed on this machine: the connection is refused.
        provider = Provider(session, "http://127.0.0.1:9/v1", lambda: datetime.now(UTC))
        outcome = await provider.send(WORK, timeout_s=5)
    finally:
        await session.close()

    assert (outcome.verdict, outcome.error) == (
        Verdict.TRANSIENT,
        "transport error: ClientConnectorError",
    )


async def test_a_slow_answer_is_cut_off_at_the_timeout(serve: Serve) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)  # the server's clean-up waits for it: no longer than needed
        return web.json_response({"code": 0})

    provider = await serve(slow)
    started = asyncio.get_running_loop().time()
    outcome = await provider.send(WORK, timeout_s=0.3)

    assert asyncio.get_running_loop().time() - started < 1
    assert (outcome.verdict, outcome.error) == (Verdict.TRANSIENT, "no answer within 0.3 s")


async def test_retry_after_is_passed_on(serve: Serve) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.json_response({"code": 429}, status=429, headers={"Retry-After": "4"})

    outcome = await (await serve(busy)).send(WORK, timeout_s=5)

    assert (outcome.verdict, outcome.retry_after_s) == (Verdict.TRANSIENT, 4.0)
