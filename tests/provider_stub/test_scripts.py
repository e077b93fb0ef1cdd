"""``PUT /_stub/script/{msgId}``: outcomes played in order for one msgId, then the behaviour."""

import json
from typing import Any

import httpx
import pytest

from tests.provider_stub.helpers import Stub, send

MSG_ID = 77


async def test_script_plays_in_order_then_the_behaviour_again(stub: Stub) -> None:
    # A global behaviour unlike any scripted outcome, so that its return shows.
    await stub.behaviour(error_rate=1.0, error_status=502)
    await stub.script(MSG_ID, ["503", "not-json", "drop", "ok"])

    first = await send(stub.client, MSG_ID)
    second = await send(stub.client, MSG_ID)
    with pytest.raises(httpx.RemoteProtocolError):
        await send(stub.client, MSG_ID)
    fourth = await send(stub.client, MSG_ID)
    fifth = await send(stub.client, MSG_ID)

    assert first.status_code == 503
    assert second.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(second.content)
    assert (fourth.status_code, fourth.json()) == (200, {"code": 0, "message": "OK"})
    assert fifth.status_code == 502
    outcomes = [entry["outcome"] for entry in await stub.journal(msg_id=MSG_ID)]
    assert outcomes == ["503", "not-json", "drop", "ok", "502"]


async def test_script_is_for_its_msg_id_only(stub: Stub) -> None:
    await stub.script(MSG_ID, ["503"])

    other = await send(stub.client, MSG_ID + 1)
    scripted = await send(stub.client, MSG_ID)

    assert (other.status_code, scripted.status_code) == (200, 503)


async def test_new_script_replaces_the_old_one(stub: Stub) -> None:
    await stub.script(MSG_ID, ["503", "503"])
    await stub.script(MSG_ID, ["429"])

    statuses = [(await send(stub.client, MSG_ID)).status_code for _ in range(2)]

    assert statuses == [429, 200]


async def test_script_answer_names_what_was_set(stub: Stub) -> None:
    response = await stub.client.put(f"/_stub/script/{MSG_ID}", json=["hang", "ok"])

    assert response.status_code == 200
    assert response.json() == {"msg_id": MSG_ID, "script": ["hang", "ok"]}


@pytest.mark.parametrize(
    "script",
    [["200"], ["600"], ["399"], ["boom"], ["OK"], ["ok", 503], [None], "ok", {"0": "ok"}, 503],
    ids=["200", "600", "399", "boom", "upper-ok", "number", "null", "string", "object", "bare"],
)
async def test_invalid_script_is_422_and_sets_nothing(stub: Stub, script: Any) -> None:
    response = await stub.client.put(f"/_stub/script/{MSG_ID}", json=script)

    assert response.status_code == 422
    assert response.json()["detail"], response.text
    assert (await send(stub.client, MSG_ID)).status_code == 200


async def test_script_for_msg_id_not_an_integer_is_400(stub: Stub) -> None:
    response = await stub.client.put("/_stub/script/abc", json=["ok"])

    assert response.status_code == 400
    assert "msg_id" in response.text


async def test_script_body_not_json_is_400(stub: Stub) -> None:
    response = await stub.client.put(f"/_stub/script/{MSG_ID}", content=b"[ok")

    assert response.status_code == 400
    assert "JSON" in response.text


async def test_clearing_the_journal_forgets_scripts(stub: Stub) -> None:
    await stub.script(MSG_ID, ["503", "503"])
    assert (await send(stub.client, MSG_ID)).status_code == 503

    cleared = await stub.client.delete("/_stub/journal")
    response = await send(stub.client, MSG_ID)

    assert cleared.status_code == 204
    assert response.status_code == 200
    entries = await stub.journal()
    assert [(entry["msg_id"], entry["outcome"]) for entry in entries] == [(MSG_ID, "ok")]
    assert (await stub.summary())["requests"] == 1
