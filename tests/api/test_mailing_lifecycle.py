"""Cancel, delete, and the detailed statistics of ``/api/v1/mailings/{id}/messages``."""

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.seed import (
    CLIENTS,
    MAILINGS,
    STATUSES,
    create_mailing,
    error_locs,
    insert_clients,
    insert_messages,
    message_statuses,
    page_ids,
    row_count,
    set_mailing_status,
    stats_of,
    stored_counts,
    walk,
)

ONE_OF_EACH = ["pending", "pending", "queued", "queued", "sent", "failed", "expired", "cancelled"]
MESSAGE_FIELDS = {
    "id",
    "mailing_id",
    "client_id",
    "status",
    "attempts",
    "last_error",
    "sent_at",
    "created_at",
    "updated_at",
}


async def _mailing_with_messages(
    api: httpx.AsyncClient, engine: AsyncEngine, status: str, statuses: list[str]
) -> tuple[dict[str, Any], list[int]]:
    mailing = await create_mailing(api)
    if status != "scheduled":
        await set_mailing_status(engine, mailing["id"], status)
    return mailing, await insert_messages(engine, mailing["id"], statuses)


# --- ids out of range ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/cancel"), ("GET", "/messages")],
)
@pytest.mark.parametrize("mailing_id", [2**63, 0, -1])
async def test_ids_out_of_range_are_422(
    api: httpx.AsyncClient, method: str, suffix: str, mailing_id: int
) -> None:
    body = {"text": "x"} if method == "PATCH" else None
    response = await api.request(method, f"{MAILINGS}/{mailing_id}{suffix}", json=body)

    assert response.status_code == 422
    assert error_locs(response) == [["path", "mailing_id"]]


# --- cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["scheduled", "running"])
async def test_cancel_stops_pending_messages_and_leaves_queued_ones_to_the_senders(
    api: httpx.AsyncClient, engine: AsyncEngine, status: str
) -> None:
    mailing, ids = await _mailing_with_messages(api, engine, status, ONE_OF_EACH)

    response = await api.post(f"{MAILINGS}/{mailing['id']}/cancel")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled"
    # A queued message may be at the provider right now: a sender or the planner settles it.
    expected = [s if s != "pending" else "cancelled" for s in ONE_OF_EACH]
    assert await message_statuses(engine, mailing["id"]) == dict(zip(ids, expected, strict=True))
    counts = {"queued": 2, "sent": 1, "failed": 1, "expired": 1, "cancelled": 3}
    assert body["stats"] == stats_of(counts)
    assert (await api.get(f"{MAILINGS}/{mailing['id']}")).json()["stats"] == stats_of(counts)
    items = (await api.get(f"{MAILINGS}/{mailing['id']}/messages")).json()["items"]
    touched = {item["id"] for item in items if item["updated_at"] != item["created_at"]}
    assert touched == {i for i, s in zip(ids, ONE_OF_EACH, strict=True) if s == "pending"}


async def test_cancel_leaves_other_mailings_alone(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    mailing, _ = await _mailing_with_messages(api, engine, "running", ["pending", "queued"])
    other, other_ids = await _mailing_with_messages(api, engine, "running", ["pending", "queued"])

    assert (await api.post(f"{MAILINGS}/{mailing['id']}/cancel")).status_code == 200

    assert await message_statuses(engine, other["id"]) == dict(
        zip(other_ids, ["pending", "queued"], strict=True)
    )
    after = (await api.get(f"{MAILINGS}/{other['id']}")).json()
    assert after["status"] == "running"
    assert after["stats"] == stats_of({"pending": 1, "queued": 1})


async def test_cancel_twice_is_200_both_times(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    mailing, _ = await _mailing_with_messages(api, engine, "running", ONE_OF_EACH)

    first = await api.post(f"{MAILINGS}/{mailing['id']}/cancel")
    second = await api.post(f"{MAILINGS}/{mailing['id']}/cancel")

    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "cancelled"
    assert second.json()["stats"] == first.json()["stats"]
    assert sorted((await message_statuses(engine, mailing["id"])).values()) == sorted(
        s if s != "pending" else "cancelled" for s in ONE_OF_EACH
    )


async def test_cancel_of_a_finished_mailing_is_409(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    statuses = ["sent", "failed", "expired"]
    mailing, ids = await _mailing_with_messages(api, engine, "finished", statuses)

    response = await api.post(f"{MAILINGS}/{mailing['id']}/cancel")

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert f"mailing {mailing['id']}" in detail
    assert "finished" in detail
    after = (await api.get(f"{MAILINGS}/{mailing['id']}")).json()
    assert after["status"] == "finished"
    assert await message_statuses(engine, mailing["id"]) == dict(zip(ids, statuses, strict=True))


async def test_cancel_of_a_missing_mailing_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post(f"{MAILINGS}/31337/cancel")

    assert response.status_code == 404
    assert response.json() == {"detail": "mailing 31337 not found"}


# --- delete -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["scheduled", "running", "finished", "cancelled"])
async def test_delete_removes_the_mailing_its_messages_and_counters(
    api: httpx.AsyncClient, engine: AsyncEngine, status: str
) -> None:
    mailing, _ = await _mailing_with_messages(api, engine, status, ONE_OF_EACH)
    other, other_ids = await _mailing_with_messages(api, engine, "running", ["queued", "sent"])
    other_before = (await api.get(f"{MAILINGS}/{other['id']}")).json()

    response = await api.delete(f"{MAILINGS}/{mailing['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert (await api.get(f"{MAILINGS}/{mailing['id']}")).status_code == 404
    assert await row_count(engine, "mailings", id=mailing["id"]) == 0
    for table in ("messages", "mailing_counts"):
        assert await row_count(engine, table, mailing_id=mailing["id"]) == 0, table
    assert (await api.get(f"{MAILINGS}/{other['id']}")).json() == other_before
    assert await message_statuses(engine, other["id"]) == dict(
        zip(other_ids, ["queued", "sent"], strict=True)
    )
    assert set(await stored_counts(engine)) == {other["id"]}


async def test_delete_keeps_the_clients(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    client_ids = await insert_clients(engine, 2)
    mailing = await create_mailing(api)
    await insert_messages(engine, mailing["id"], ["sent", "pending"], client_ids)

    assert (await api.delete(f"{MAILINGS}/{mailing['id']}")).status_code == 204

    for client_id in client_ids:
        assert (await api.get(f"{CLIENTS}/{client_id}")).status_code == 200


async def test_delete_twice_is_404_the_second_time(api: httpx.AsyncClient) -> None:
    mailing = await create_mailing(api)

    assert (await api.delete(f"{MAILINGS}/{mailing['id']}")).status_code == 204
    response = await api.delete(f"{MAILINGS}/{mailing['id']}")

    assert response.status_code == 404
    assert response.json() == {"detail": f"mailing {mailing['id']} not found"}


async def test_delete_of_a_missing_mailing_is_404(api: httpx.AsyncClient) -> None:
    response = await api.delete(f"{MAILINGS}/8080")

    assert response.status_code == 404
    assert response.json() == {"detail": "mailing 8080 not found"}


# --- messages -----------------------------------------------------------------------------


async def test_messages_of_a_missing_mailing_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{MAILINGS}/999/messages")

    assert response.status_code == 404
    assert response.json() == {"detail": "mailing 999 not found"}


async def test_messages_of_a_mailing_without_any_is_an_empty_page(
    api: httpx.AsyncClient,
) -> None:
    mailing = await create_mailing(api)

    response = await api.get(f"{MAILINGS}/{mailing['id']}/messages")

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_message_items_have_every_field(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    client_ids = await insert_clients(engine, 2)
    mailing = await create_mailing(api)
    ids = await insert_messages(engine, mailing["id"], ["pending", "failed"], client_ids)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE messages SET attempts = 3, last_error = 'provider answered 400',"
                " sent_at = '2030-01-01T10:00:00+03:00' WHERE id = :id"
            ),
            {"id": ids[1]},
        )

    page = (await api.get(f"{MAILINGS}/{mailing['id']}/messages")).json()

    assert page["next_cursor"] is None
    first, second = page["items"]
    assert set(first) == set(second) == MESSAGE_FIELDS
    assert first["id"] == ids[0]
    assert (first["mailing_id"], first["client_id"]) == (mailing["id"], client_ids[0])
    assert (first["status"], first["attempts"], first["last_error"], first["sent_at"]) == (
        "pending",
        0,
        None,
        None,
    )
    assert first["created_at"]
    assert first["updated_at"]
    assert second["id"] == ids[1]
    assert (second["status"], second["attempts"], second["last_error"]) == (
        "failed",
        3,
        "provider answered 400",
    )
    assert second["sent_at"] in ("2030-01-01T07:00:00Z", "2030-01-01T07:00:00+00:00")


async def test_messages_show_only_that_mailing(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    client_ids = await insert_clients(engine, 3)
    mailing = await create_mailing(api)
    other = await create_mailing(api)
    ids = await insert_messages(engine, mailing["id"], ["sent"] * 3, client_ids)
    await insert_messages(engine, other["id"], ["sent"] * 3, client_ids)

    page = (await api.get(f"{MAILINGS}/{mailing['id']}/messages")).json()

    assert [item["id"] for item in page["items"]] == ids
    assert {item["mailing_id"] for item in page["items"]} == {mailing["id"]}


async def test_message_of_a_deleted_client_stays_without_its_client(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    client_ids = await insert_clients(engine, 2)
    mailing = await create_mailing(api)
    ids = await insert_messages(engine, mailing["id"], ["sent", "sent"], client_ids)

    assert (await api.delete(f"{CLIENTS}/{client_ids[0]}")).status_code == 204

    items = (await api.get(f"{MAILINGS}/{mailing['id']}/messages")).json()["items"]
    assert [(i["id"], i["client_id"], i["status"]) for i in items] == [
        (ids[0], None, "sent"),
        (ids[1], client_ids[1], "sent"),
    ]
    assert (await api.get(f"{MAILINGS}/{mailing['id']}")).json()["stats"] == stats_of({"sent": 2})


@pytest.mark.parametrize("status", STATUSES)
async def test_messages_filter_by_status(
    api: httpx.AsyncClient, engine: AsyncEngine, status: str
) -> None:
    mailing, ids = await _mailing_with_messages(api, engine, "running", ONE_OF_EACH)

    response = await api.get(f"{MAILINGS}/{mailing['id']}/messages", params={"status": status})

    assert response.status_code == 200
    expected = [i for i, s in zip(ids, ONE_OF_EACH, strict=True) if s == status]
    assert [item["id"] for item in response.json()["items"]] == expected
    assert {item["status"] for item in response.json()["items"]} == {status}


@pytest.mark.parametrize("status", ["delivered", "PENDING", "", "scheduled"])
async def test_messages_refuse_an_unknown_status(
    api: httpx.AsyncClient, engine: AsyncEngine, status: str
) -> None:
    mailing = await create_mailing(api)

    response = await api.get(f"{MAILINGS}/{mailing['id']}/messages", params={"status": status})

    assert response.status_code == 422
    assert error_locs(response) == [["query", "status"]]


@pytest.mark.parametrize("extra", [["sent"], []])
async def test_messages_cursor_walk(
    api: httpx.AsyncClient, engine: AsyncEngine, extra: list[str]
) -> None:
    statuses = [*ONE_OF_EACH, *extra]
    mailing, ids = await _mailing_with_messages(api, engine, "running", statuses)

    pages = await walk(api, f"{MAILINGS}/{mailing['id']}/messages", limit=4)

    assert page_ids(pages) == [ids[n : n + 4] for n in range(0, len(ids), 4)]


async def test_messages_cursor_walk_with_a_status_filter(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    statuses = ["sent", "failed", "sent", "sent", "pending", "sent", "sent", "expired", "sent"]
    mailing, ids = await _mailing_with_messages(api, engine, "running", statuses)
    sent = [i for i, s in zip(ids, statuses, strict=True) if s == "sent"]

    pages = page_ids(
        await walk(api, f"{MAILINGS}/{mailing['id']}/messages", limit=2, status="sent")
    )

    assert [i for page in pages for i in page] == sent
    assert all(len(page) <= 2 for page in pages)
