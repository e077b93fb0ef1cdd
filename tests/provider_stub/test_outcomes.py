"""Every outcome of ``POST /v1/send/{msgId}``: what the sender sees, what the journal records."""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.provider_stub.helpers import AUTH, TOKEN, Stub, instant, message, send, serve

MSG_ID = 4242


def assert_entry(
    entry: dict[str, Any], *, outcome: str, msg_id: int | None = MSG_ID, body: Any = None
) -> None:
    """One journal entry as SPEC §4.1 describes it, for a request sent just now."""
    received_at = instant(entry["received_at"])
    assert abs(datetime.now(UTC) - received_at) < timedelta(seconds=10)
    assert entry["msg_id"] == msg_id
    assert entry["body"] == (message(MSG_ID) if body is None else body)
    assert entry["outcome"] == outcome


async def test_ok_is_code_zero(sender: httpx.AsyncClient, stub: Stub) -> None:
    response = await send(sender, MSG_ID)

    assert response.status_code == 200
    assert response.json() == {"code": 0, "message": "OK"}
    entry = await stub.only_entry()
    assert_entry(entry, outcome="ok")
    assert entry["authorized"] is True
    assert entry["client_disconnected"] is False


@pytest.mark.parametrize("status", ["503", "429", "400", "404", "500", "502"])
async def test_status_outcome_answers_that_status(
    sender: httpx.AsyncClient, stub: Stub, status: str
) -> None:
    await stub.script(MSG_ID, [status])

    response = await send(sender, MSG_ID)

    assert response.status_code == int(status)
    entry = await stub.only_entry()
    assert_entry(entry, outcome=status)
    assert (entry["authorized"], entry["client_disconnected"]) == (True, False)


async def test_not_json_is_200_that_json_rejects(sender: httpx.AsyncClient, stub: Stub) -> None:
    await stub.script(MSG_ID, ["not-json"])

    response = await send(sender, MSG_ID)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert_entry(await stub.only_entry(), outcome="not-json")


async def test_empty_object_is_200_with_nothing_in_it(
    sender: httpx.AsyncClient, stub: Stub
) -> None:
    await stub.script(MSG_ID, ["empty-object"])

    response = await send(sender, MSG_ID)

    assert (response.status_code, response.json()) == (200, {})
    assert_entry(await stub.only_entry(), outcome="empty-object")


async def test_code_1_is_200_with_code_1(sender: httpx.AsyncClient, stub: Stub) -> None:
    await stub.script(MSG_ID, ["code-1"])

    response = await send(sender, MSG_ID)

    assert response.status_code == 200
    assert response.json()["code"] == 1
    assert_entry(await stub.only_entry(), outcome="code-1")


async def test_code_string_0_is_200_with_the_code_as_a_string(
    sender: httpx.AsyncClient, stub: Stub
) -> None:
    await stub.script(MSG_ID, ["code-string-0"])

    response = await send(sender, MSG_ID)

    assert response.status_code == 200
    assert response.json()["code"] == "0"
    assert_entry(await stub.only_entry(), outcome="code-string-0")


async def test_drop_closes_the_connection(sender: httpx.AsyncClient, stub: Stub) -> None:
    await stub.script(MSG_ID, ["drop"])

    # httpx says RemoteProtocolError; the aiohttp transport maps aiohttp's
    # ServerDisconnectedError (a ClientConnectionError) to httpx.ConnectTimeout.
    with pytest.raises((httpx.RemoteProtocolError, httpx.ConnectTimeout)):
        await send(sender, MSG_ID)

    entry = await stub.settled_entry()
    assert_entry(entry, outcome="drop")
    assert entry["client_disconnected"] is True


async def test_hang_holds_until_the_client_gives_up(sender: httpx.AsyncClient, stub: Stub) -> None:
    await stub.script(MSG_ID, ["hang"])

    with pytest.raises(httpx.ReadTimeout):
        await send(sender, MSG_ID, timeout_s=0.5)

    # The stub learns that the client left when the connection closes, a moment later.
    entry = await stub.settled_entry()
    assert_entry(entry, outcome="hang")
    assert entry["client_disconnected"] is True
    summary = await stub.summary()
    assert (summary["successes"], summary["by_outcome"]) == (0, {"hang": 1})


async def test_hang_ends_in_a_drop_after_hang_max_s() -> None:
    runner, url = await serve(hang_max_s=0.3)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
            control = Stub(client)
            await control.script(MSG_ID, ["hang"])
            started = time.monotonic()
            with pytest.raises(httpx.RemoteProtocolError):
                await send(client, MSG_ID, timeout_s=5.0)
            elapsed_s = time.monotonic() - started
            entry = await control.settled_entry()
    finally:
        await runner.cleanup()

    assert 0.3 <= elapsed_s < 5.0
    assert (entry["outcome"], entry["client_disconnected"]) == ("hang", True)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Token {TOKEN}", "Bearer", TOKEN],
    ids=["no-header", "wrong-token", "basic", "token-scheme", "bearer-alone", "no-scheme"],
)
async def test_without_the_token_is_401(
    sender: httpx.AsyncClient, stub: Stub, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await send(sender, MSG_ID, headers=headers)

    assert response.status_code == 401
    assert TOKEN not in response.text
    entry = await stub.only_entry()
    assert_entry(entry, outcome="unauthorized")
    assert entry["authorized"] is False


async def test_unauthorized_request_does_not_use_up_a_script(
    sender: httpx.AsyncClient, stub: Stub
) -> None:
    await stub.script(MSG_ID, ["503"])

    refused = await send(sender, MSG_ID, headers={"Authorization": "Bearer wrong"})
    scripted = await send(sender, MSG_ID)

    assert (refused.status_code, scripted.status_code) == (401, 503)


def _without(key: str) -> dict[str, Any]:
    body = message(MSG_ID)
    del body[key]
    return body


BAD_BODIES = {
    "missing-phone": _without("phone"),
    "missing-text": _without("text"),
    "extra-key": {**message(MSG_ID), "priority": 1},
    "other-id": message(MSG_ID + 1),
    "phone-as-string": {**message(MSG_ID), "phone": str(message(MSG_ID)["phone"])},
    "id-as-true": {**message(MSG_ID), "id": True},
    "id-as-float": {**message(MSG_ID), "id": float(MSG_ID)},
    "phone-as-true": {**message(MSG_ID), "phone": True},
    "phone-as-float": {**message(MSG_ID), "phone": 79001234567.0},
    "text-as-number": {**message(MSG_ID), "text": 5},
    "a-list": [message(MSG_ID)],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_body_off_contract_is_400(sender: httpx.AsyncClient, stub: Stub, body: Any) -> None:
    response = await send(sender, MSG_ID, body)

    assert response.status_code == 400
    entry = await stub.only_entry()
    assert_entry(entry, outcome="bad-request", body=body)
    assert entry["authorized"] is True


async def test_true_is_not_msg_id_1(sender: httpx.AsyncClient, stub: Stub) -> None:
    # In Python True == 1: the contract wants a JSON integer, not a boolean.
    response = await send(sender, 1, {"id": True, "phone": 79001234567, "text": "Hello"})

    assert response.status_code == 400
    assert (await stub.only_entry())["outcome"] == "bad-request"


async def test_body_not_json_is_400(sender: httpx.AsyncClient, stub: Stub) -> None:
    response = await sender.post(f"/v1/send/{MSG_ID}", content=b"id=1&text=hi", headers=AUTH)

    assert response.status_code == 400
    # Kept as text, since there is no JSON to keep.
    assert_entry(await stub.only_entry(), outcome="bad-request", body="id=1&text=hi")


@pytest.mark.parametrize("msg_id", ["abc", str(2**63), str(-(2**63) - 1), "1.5", "0x10"])
async def test_msg_id_not_int64_is_400(sender: httpx.AsyncClient, stub: Stub, msg_id: str) -> None:
    body = {"id": 1, "phone": 79001234567, "text": "Hello"}

    response = await send(sender, msg_id, body)

    assert response.status_code == 400
    entry = await stub.only_entry()
    assert (entry["msg_id"], entry["outcome"]) == (None, "bad-request")


@pytest.mark.parametrize("msg_id", [2**63 - 1, -(2**63), 0])
async def test_int64_bounds_are_msg_ids(sender: httpx.AsyncClient, stub: Stub, msg_id: int) -> None:
    response = await send(sender, msg_id)

    assert response.status_code == 200
    entry = await stub.only_entry()
    assert (entry["msg_id"], entry["outcome"], entry["body"]) == (msg_id, "ok", message(msg_id))
