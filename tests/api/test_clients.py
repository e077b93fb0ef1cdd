"""``/api/v1/clients``: create, read, partial update and delete (SPEC §2, §3)."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.seed import CLIENTS, MAILINGS, create_client, error_locs


async def _client_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT id, phone, operator_code, tag, timezone FROM clients ORDER BY id")
        )
        return [dict(row._mapping) for row in result]


async def _message_rows(engine: AsyncEngine) -> dict[int, dict[str, Any]]:
    """Every message by id, with the columns a delete may change."""
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT id, mailing_id, client_id, status FROM messages ORDER BY id")
        )
        return {row.id: dict(row._mapping) for row in result}


async def _insert_message(engine: AsyncEngine, client_id: int, status: str) -> int:
    """A running mailing with one message of ``status`` for the client; the message id."""
    async with engine.begin() as connection:
        mailing_id = await connection.scalar(
            text(
                "INSERT INTO mailings (start_at, end_at, text, status)"
                " VALUES (now(), now() + interval '1 hour', 'hello', 'running') RETURNING id"
            )
        )
        message_id = await connection.scalar(
            text(
                "INSERT INTO messages (mailing_id, client_id, status, sent_at)"
                " VALUES (:mailing_id, :client_id, CAST(:status AS text),"
                " CASE WHEN CAST(:status AS text) = 'sent' THEN now() END) RETURNING id"
            ),
            {"mailing_id": mailing_id, "client_id": client_id, "status": status},
        )
    assert isinstance(message_id, int)
    return message_id


# --- create --------------------------------------------------------------------------------


async def test_create_defaults(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    response = await api.post(CLIENTS, json={"phone": "79031234567"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["phone"] == "79031234567"
    assert body["operator_code"] == "903"  # digits 2-4 of the phone
    assert body["tag"] == ""
    assert body["timezone"] == "UTC"
    assert isinstance(body["id"], int)
    assert body["created_at"] == body["updated_at"]
    assert await _client_rows(engine) == [
        {
            "id": body["id"],
            "phone": "79031234567",
            "operator_code": "903",
            "tag": "",
            "timezone": "UTC",
        }
    ]


async def test_create_keeps_explicit_fields(api: httpx.AsyncClient) -> None:
    body = await create_client(
        api, phone="79031234567", operator_code="123", tag="vip", timezone="Asia/Vladivostok"
    )

    assert body["operator_code"] == "123"
    assert body["tag"] == "vip"
    assert body["timezone"] == "Asia/Vladivostok"
    fetched = (await api.get(f"{CLIENTS}/{body['id']}")).json()
    assert fetched == body


async def test_create_duplicate_phone_is_409(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    first = await create_client(api, phone="79161234567")

    response = await api.post(CLIENTS, json={"phone": "79161234567", "tag": "other"})

    assert response.status_code == 409
    assert "79161234567" in response.json()["detail"]
    rows = await _client_rows(engine)
    assert [row["id"] for row in rows] == [first["id"]]
    assert rows[0]["tag"] == ""


async def test_concurrent_creates_of_one_phone(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    responses = await asyncio.gather(
        *(api.post(CLIENTS, json={"phone": "79161112233", "tag": f"t{i}"}) for i in range(20))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [r.text for r in responses]
    rows = await _client_rows(engine)
    assert len(rows) == 1
    winner = next(r for r in responses if r.status_code == 201).json()
    assert rows[0]["id"] == winner["id"]
    assert rows[0]["tag"] == winner["tag"]


# --- read ----------------------------------------------------------------------------------


async def test_get_missing_client_is_404_naming_the_id(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{CLIENTS}/424242")

    assert response.status_code == 404
    assert "424242" in response.json()["detail"]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("client_id", [2**63, 10**30, 0, -1, "abc"])
async def test_out_of_range_ids_are_422(
    api: httpx.AsyncClient, method: str, client_id: int | str
) -> None:
    response = await api.request(method, f"{CLIENTS}/{client_id}", json={"tag": "x"})

    assert response.status_code == 422, response.text
    assert ["path", "client_id"] in error_locs(response)


async def test_largest_bigint_id_is_a_plain_404(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{CLIENTS}/{2**63 - 1}")

    assert response.status_code == 404
    assert str(2**63 - 1) in response.json()["detail"]


# --- partial update ------------------------------------------------------------------------


async def test_patch_changes_only_the_given_fields(api: httpx.AsyncClient) -> None:
    client = await create_client(api, phone="79161234567", tag="old", timezone="Europe/Moscow")

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={"tag": "new"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tag"] == "new"
    unchanged = ("phone", "operator_code", "timezone", "id", "created_at")
    assert {k: body[k] for k in unchanged} == {k: client[k] for k in unchanged}
    assert (await api.get(f"{CLIENTS}/{client['id']}")).json() == body


async def test_patch_phone_keeps_operator_code(api: httpx.AsyncClient) -> None:
    client = await create_client(api, phone="79161234567")

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={"phone": "79031234567"})

    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "79031234567"
    assert response.json()["operator_code"] == "916"


async def test_patch_phone_and_operator_code_together(api: httpx.AsyncClient) -> None:
    client = await create_client(api, phone="79161234567")

    response = await api.patch(
        f"{CLIENTS}/{client['id']}",
        json={"phone": "79031234567", "operator_code": "903", "timezone": "Asia/Tokyo"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["phone"], body["operator_code"], body["timezone"]) == (
        "79031234567",
        "903",
        "Asia/Tokyo",
    )


async def test_patch_empty_body_changes_nothing(api: httpx.AsyncClient) -> None:
    client = await create_client(api, tag="keep")

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={})

    assert response.status_code == 200
    assert response.json() == client


@pytest.mark.parametrize("field", ["phone", "operator_code", "tag", "timezone"])
async def test_patch_null_is_422_naming_the_field(
    api: httpx.AsyncClient, engine: AsyncEngine, field: str
) -> None:
    client = await create_client(api, tag="keep")

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={field: None})

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locs(response)
    assert (await api.get(f"{CLIENTS}/{client['id']}")).json() == client


async def test_patch_to_a_taken_phone_is_409(api: httpx.AsyncClient) -> None:
    first = await create_client(api, phone="79161234567")
    second = await create_client(api, phone="79031234567")

    response = await api.patch(f"{CLIENTS}/{second['id']}", json={"phone": "79161234567"})

    assert response.status_code == 409
    assert "79161234567" in response.json()["detail"]
    assert (await api.get(f"{CLIENTS}/{second['id']}")).json()["phone"] == "79031234567"
    assert (await api.get(f"{CLIENTS}/{first['id']}")).json() == first


async def test_patch_to_its_own_phone_is_fine(api: httpx.AsyncClient) -> None:
    client = await create_client(api, phone="79161234567")

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={"phone": "79161234567"})

    assert response.status_code == 200
    assert response.json()["phone"] == "79161234567"


async def test_patch_unknown_field_is_422(api: httpx.AsyncClient) -> None:
    client = await create_client(api)

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={"tag": "x", "name": "Bob"})

    assert response.status_code == 422
    assert ["body", "name"] in error_locs(response)
    assert (await api.get(f"{CLIENTS}/{client['id']}")).json()["tag"] == ""


async def test_patch_invalid_value_is_422(api: httpx.AsyncClient) -> None:
    client = await create_client(api)

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={"phone": "89161234567"})

    assert response.status_code == 422
    assert ["body", "phone"] in error_locs(response)


async def test_patch_missing_client_is_404(api: httpx.AsyncClient) -> None:
    response = await api.patch(f"{CLIENTS}/777", json={"tag": "x"})

    assert response.status_code == 404
    assert "777" in response.json()["detail"]


# --- delete --------------------------------------------------------------------------------


async def test_delete_then_gone(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    client = await create_client(api)
    other = await create_client(api, phone="79031234567")

    response = await api.delete(f"{CLIENTS}/{client['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert (await api.get(f"{CLIENTS}/{client['id']}")).status_code == 404
    again = await api.delete(f"{CLIENTS}/{client['id']}")
    assert again.status_code == 404
    assert str(client["id"]) in again.json()["detail"]
    assert [row["id"] for row in await _client_rows(engine)] == [other["id"]]


async def test_delete_frees_the_phone(api: httpx.AsyncClient) -> None:
    client = await create_client(api, phone="79161234567")
    assert (await api.delete(f"{CLIENTS}/{client['id']}")).status_code == 204

    again = await create_client(api, phone="79161234567")

    assert again["id"] != client["id"]


async def test_delete_cancels_pending_messages_and_keeps_records(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    client = await create_client(api, phone="79161234567")
    bystander = await create_client(api, phone="79031234567")
    pending = await _insert_message(engine, client["id"], "pending")
    queued = await _insert_message(engine, client["id"], "queued")
    sent = await _insert_message(engine, client["id"], "sent")
    failed = await _insert_message(engine, client["id"], "failed")
    untouched = await _insert_message(engine, bystander["id"], "pending")

    response = await api.delete(f"{CLIENTS}/{client['id']}")

    assert response.status_code == 204
    messages = await _message_rows(engine)
    assert set(messages) == {pending, queued, sent, failed, untouched}
    assert {mid: messages[mid]["status"] for mid in (pending, queued, sent, failed)} == {
        pending: "cancelled",
        # Possibly at the provider now: the senders treat it as cancelled (client_id is null).
        queued: "queued",
        sent: "sent",
        failed: "failed",
    }
    assert all(messages[mid]["client_id"] is None for mid in (pending, queued, sent, failed))
    assert messages[untouched]["status"] == "pending"
    assert messages[untouched]["client_id"] == bystander["id"]


async def test_deleted_clients_messages_show_in_statistics(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    client = await create_client(api)
    pending = await _insert_message(engine, client["id"], "pending")
    mailing_id = (await _message_rows(engine))[pending]["mailing_id"]

    assert (await api.delete(f"{CLIENTS}/{client['id']}")).status_code == 204

    listed = (await api.get(f"{MAILINGS}/{mailing_id}/messages")).json()["items"]
    assert [(m["id"], m["status"], m["client_id"]) for m in listed] == [
        (pending, "cancelled", None)
    ]
    stats = (await api.get(f"{MAILINGS}/{mailing_id}")).json()["stats"]
    assert stats["total"] == 1
    assert stats["by_status"]["cancelled"] == 1
    assert stats["by_status"]["pending"] == 0


# --- methods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [(CLIENTS, {"GET", "POST"}), (f"{CLIENTS}/1", {"GET", "PATCH", "DELETE"})],
    ids=["list", "one"],
)
async def test_unsupported_method_is_405_listing_the_allowed_ones(
    api: httpx.AsyncClient, path: str, allowed: set[str]
) -> None:
    response = await api.put(path, json={"phone": "79161234567"})

    assert response.status_code == 405, response.text
    assert set(response.headers["Allow"].split(", ")) == allowed


async def test_a_zone_change_moves_pending_windowed_messages_and_wakes_their_new_zone(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The planner dispatches windowed messages per zone: a client that moves must take its
    waiting messages along, and the new zone must be looked at again at once."""
    client = await create_client(api, timezone="Europe/Berlin")
    async with engine.begin() as connection:
        for status in ("pending", "queued"):  # one windowed mailing each
            await connection.execute(
                text(
                    "WITH m AS (INSERT INTO mailings"
                    " (start_at, end_at, text, status, window_start, window_end) VALUES"
                    " (now(), now() + interval '1 day', 'hi', 'running', '09:00', '10:00')"
                    " RETURNING id)"
                    " INSERT INTO messages (mailing_id, client_id, status, timezone)"
                    " SELECT id, :client_id, :status, 'Europe/Berlin' FROM m"
                ),
                {"client_id": client["id"], "status": status},
            )
        # Both mailings already know the zone, asleep until a later opening.
        await connection.execute(
            text(
                "INSERT INTO mailing_zones (mailing_id, timezone, wake_at)"
                " SELECT id, 'Asia/Tokyo', now() + interval '5 hours' FROM mailings"
            )
        )

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={"timezone": "Asia/Tokyo"})

    assert response.status_code == 200, response.text
    async with engine.connect() as connection:
        messages = (
            await connection.execute(text("SELECT status, timezone FROM messages ORDER BY id"))
        ).all()
        due = (
            await connection.execute(
                text(
                    "SELECT m.status AS message_status FROM mailing_zones z"
                    " JOIN messages m ON m.mailing_id = z.mailing_id"
                    " WHERE z.timezone = 'Asia/Tokyo' AND z.wake_at <= now()"
                )
            )
        ).all()
    # The queued one stays as it is: the sender reads the client's zone when it checks.
    assert [tuple(row) for row in messages] == [
        ("pending", "Asia/Tokyo"),
        ("queued", "Europe/Berlin"),
    ]
    assert [row.message_status for row in due] == ["pending"]
