"""``/api/v1/mailings``: create, read, list and the PATCH rules of SPEC §3."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.seed import (
    MAILINGS,
    ZERO_COUNTS,
    create_mailing,
    error_locs,
    in_hours,
    page_ids,
    set_mailing_status,
    walk,
)

FIELDS = {
    *("id", "start_at", "end_at", "text", "filter", "send_window"),
    *("status", "created_at", "updated_at", "stats"),
}


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


# --- create and read ----------------------------------------------------------------------


async def test_create_returns_the_whole_mailing(api: httpx.AsyncClient) -> None:
    body = {
        "start_at": "2030-01-01T12:00:00+03:00",
        "end_at": "2030-01-02T01:30:00-05:00",
        "text": 'Sale: "quotes", back\\slash,\nnew line, emoji 🎉',
        "filter": {"operator_codes": ["916", "903"], "tags": ["vip", "VIP"]},
        "send_window": {"start": "22:00", "end": "06:00"},
    }
    response = await api.post(MAILINGS, json=body)

    assert response.status_code == 201, response.text
    mailing = response.json()
    assert set(mailing) == FIELDS
    assert isinstance(mailing["id"], int)
    assert _instant(mailing["start_at"]) == datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert _instant(mailing["end_at"]) == datetime(2030, 1, 2, 6, 30, tzinfo=UTC)
    assert mailing["text"] == body["text"]
    assert mailing["filter"] == body["filter"]
    assert mailing["send_window"] == {"start": "22:00", "end": "06:00"}
    assert mailing["status"] == "scheduled"
    assert mailing["stats"] == {"total": 0, "by_status": ZERO_COUNTS}
    _instant(mailing["created_at"])
    _instant(mailing["updated_at"])


async def test_create_defaults_to_an_empty_filter_and_no_window(api: httpx.AsyncClient) -> None:
    mailing = await create_mailing(api)

    assert mailing["filter"] == {"operator_codes": [], "tags": []}
    assert mailing["send_window"] is None


async def test_create_refuses_an_end_in_the_past(api: httpx.AsyncClient) -> None:
    body = {"start_at": in_hours(-3), "end_at": in_hours(-1), "text": "late"}
    response = await api.post(MAILINGS, json=body)

    assert response.status_code == 422
    assert error_locs(response) == [["body", "end_at"]]
    assert (await api.get(MAILINGS)).json()["items"] == []


async def test_get_returns_what_create_returned(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api, send_window={"start": "09:00", "end": "18:00"})
    response = await api.get(f"{MAILINGS}/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


async def test_get_of_a_missing_mailing_is_404_naming_it(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{MAILINGS}/424242")

    assert response.status_code == 404
    assert response.json() == {"detail": "mailing 424242 not found"}


# --- list ---------------------------------------------------------------------------------


async def _mailings_in_statuses(
    api: httpx.AsyncClient, engine: AsyncEngine, statuses: list[str]
) -> list[int]:
    ids = []
    for status in statuses:
        mailing = await create_mailing(api)
        if status != "scheduled":
            await set_mailing_status(engine, mailing["id"], status)
        ids.append(mailing["id"])
    return ids


async def test_list_items_have_the_mailing_shape(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api)
    page = (await api.get(MAILINGS)).json()

    assert page == {"items": [created], "next_cursor": None}


async def test_list_filters_by_status(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    statuses = ["scheduled", "running", "finished", "running", "cancelled", "scheduled"]
    ids = await _mailings_in_statuses(api, engine, statuses)

    for wanted in ("scheduled", "running", "finished", "cancelled"):
        page = (await api.get(MAILINGS, params={"status": wanted})).json()
        expected = [i for i, s in zip(ids, statuses, strict=True) if s == wanted]
        assert [item["id"] for item in page["items"]] == expected
        assert {item["status"] for item in page["items"]} == {wanted}


async def test_list_refuses_an_unknown_status(api: httpx.AsyncClient) -> None:
    response = await api.get(MAILINGS, params={"status": "paused"})

    assert response.status_code == 422
    assert error_locs(response) == [["query", "status"]]


@pytest.mark.parametrize("count", [7, 6, 1])
async def test_cursor_walk_visits_every_mailing_once(api: httpx.AsyncClient, count: int) -> None:
    ids = [(await create_mailing(api))["id"] for _ in range(count)]

    pages = page_ids(await walk(api, MAILINGS, limit=3))

    # The last page says null itself: an exact multiple leads to no empty page.
    assert pages == [ids[n : n + 3] for n in range(0, count, 3)]


async def test_cursor_walk_with_a_status_filter(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    statuses = ["running", "scheduled", "running", "running", "finished", "running", "running"]
    ids = await _mailings_in_statuses(api, engine, statuses)
    running = [i for i, s in zip(ids, statuses, strict=True) if s == "running"]

    pages = page_ids(await walk(api, MAILINGS, limit=2, status="running"))

    assert [i for page in pages for i in page] == running
    assert all(len(page) <= 2 for page in pages)
    assert pages[-1] == running[4:]


# --- PATCH of a scheduled mailing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"text": "new text ✓"}, {"text": "new text ✓"}),
        (
            {"filter": {"operator_codes": ["999"], "tags": []}},
            {"filter": {"operator_codes": ["999"], "tags": []}},
        ),
        ({"filter": {"tags": ["a"]}}, {"filter": {"operator_codes": [], "tags": ["a"]}}),
        ({"start_at": "2030-05-01T10:00:00+02:00"}, {"start_at": "2030-05-01T08:00:00+00:00"}),
        ({"end_at": "2031-01-01T03:00:00+03:00"}, {"end_at": "2031-01-01T00:00:00+00:00"}),
        (
            {"send_window": {"start": "08:30", "end": "20:00"}},
            {"send_window": {"start": "08:30", "end": "20:00"}},
        ),
    ],
)
async def test_scheduled_mailing_takes_any_field(
    api: httpx.AsyncClient, change: dict[str, Any], expected: dict[str, Any]
) -> None:
    created = await create_mailing(
        api, start_at="2030-01-01T00:00:00Z", end_at="2030-12-31T00:00:00Z"
    )
    response = await api.patch(f"{MAILINGS}/{created['id']}", json=change)

    assert response.status_code == 200, response.text
    updated = response.json()
    for name, value in expected.items():
        if name.endswith("_at"):
            assert _instant(updated[name]) == datetime.fromisoformat(value)
        else:
            assert updated[name] == value
    assert _instant(updated["updated_at"]) > _instant(created["updated_at"])
    untouched = FIELDS - set(expected) - {"updated_at"}
    assert {k: updated[k] for k in untouched} == {k: created[k] for k in untouched}
    assert (await api.get(f"{MAILINGS}/{created['id']}")).json() == updated


async def test_send_window_is_removed_with_null(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api, send_window={"start": "22:00", "end": "06:00"})
    response = await api.patch(f"{MAILINGS}/{created['id']}", json={"send_window": None})

    assert response.status_code == 200, response.text
    assert response.json()["send_window"] is None
    assert (await api.get(f"{MAILINGS}/{created['id']}")).json()["send_window"] is None


async def test_several_fields_at_once(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api)
    change = {"text": "both", "start_at": in_hours(5), "end_at": in_hours(6)}
    response = await api.patch(f"{MAILINGS}/{created['id']}", json=change)

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["text"] == "both"
    assert _instant(updated["start_at"]) == datetime.fromisoformat(change["start_at"])
    assert _instant(updated["end_at"]) == datetime.fromisoformat(change["end_at"])


async def test_patch_of_a_missing_mailing_is_404(api: httpx.AsyncClient) -> None:
    response = await api.patch(f"{MAILINGS}/77", json={"text": "x"})

    assert response.status_code == 404
    assert response.json() == {"detail": "mailing 77 not found"}


# --- PATCH that is refused ----------------------------------------------------------------


async def _assert_unchanged(api: httpx.AsyncClient, before: dict[str, Any]) -> None:
    after = (await api.get(f"{MAILINGS}/{before['id']}")).json()
    assert {k: v for k, v in after.items() if k != "status"} == {
        k: v for k, v in before.items() if k != "status"
    }


REFUSED_WHILE_RUNNING = [
    {"text": "changed"},
    {"filter": {"tags": ["other"]}},
    {"start_at": in_hours(0.5)},
    {"send_window": {"start": "10:00", "end": "11:00"}},
    {"send_window": None},
]


@pytest.mark.parametrize("change", REFUSED_WHILE_RUNNING, ids=lambda c: next(iter(c)))
async def test_running_mailing_refuses_all_but_end_at(
    api: httpx.AsyncClient, engine: AsyncEngine, change: dict[str, Any]
) -> None:
    created = await create_mailing(api, send_window={"start": "09:00", "end": "18:00"})
    await set_mailing_status(engine, created["id"], "running")

    response = await api.patch(f"{MAILINGS}/{created['id']}", json=change)

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert f"mailing {created['id']}" in detail
    assert "running" in detail
    assert next(iter(change)) in detail
    await _assert_unchanged(api, created)


async def test_running_mailing_refuses_end_at_with_another_field(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    created = await create_mailing(api)
    await set_mailing_status(engine, created["id"], "running")

    response = await api.patch(
        f"{MAILINGS}/{created['id']}", json={"end_at": in_hours(9), "text": "sneaky"}
    )

    assert response.status_code == 409
    assert "text" in response.json()["detail"]
    await _assert_unchanged(api, created)


async def test_running_mailing_takes_a_future_end_at(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    created = await create_mailing(api, start_at=in_hours(-1))
    await set_mailing_status(engine, created["id"], "running")
    new_end = in_hours(10)

    response = await api.patch(f"{MAILINGS}/{created['id']}", json={"end_at": new_end})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "running"
    assert _instant(response.json()["end_at"]) == datetime.fromisoformat(new_end)


@pytest.mark.parametrize("status", ["running", "scheduled"])
async def test_end_at_in_the_past_is_422(
    api: httpx.AsyncClient, engine: AsyncEngine, status: str
) -> None:
    created = await create_mailing(api, start_at=in_hours(-2))
    await set_mailing_status(engine, created["id"], status)

    response = await api.patch(f"{MAILINGS}/{created['id']}", json={"end_at": in_hours(-1)})

    assert response.status_code == 422
    assert error_locs(response) == [["body", "end_at"]]
    await _assert_unchanged(api, created)


@pytest.mark.parametrize("status", ["finished", "cancelled"])
@pytest.mark.parametrize(
    "change",
    [{"text": "again"}, {"end_at": in_hours(24)}, {"send_window": None}, {}],
    ids=["text", "end_at", "send_window", "nothing"],
)
async def test_final_mailing_refuses_every_patch(
    api: httpx.AsyncClient, engine: AsyncEngine, status: str, change: dict[str, Any]
) -> None:
    created = await create_mailing(api)
    await set_mailing_status(engine, created["id"], status)

    response = await api.patch(f"{MAILINGS}/{created['id']}", json=change)

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert f"mailing {created['id']}" in detail
    assert status in detail
    await _assert_unchanged(api, created)


async def test_start_at_past_the_stored_end_at_is_422_on_end_at(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api, start_at=in_hours(1), end_at=in_hours(2))

    response = await api.patch(f"{MAILINGS}/{created['id']}", json={"start_at": in_hours(3)})

    assert response.status_code == 422
    assert error_locs(response) == [["body", "end_at"]]
    await _assert_unchanged(api, created)


async def test_end_at_before_the_stored_start_at_is_422(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api, start_at=in_hours(5), end_at=in_hours(6))

    response = await api.patch(f"{MAILINGS}/{created['id']}", json={"end_at": in_hours(4)})

    assert response.status_code == 422
    assert error_locs(response) == [["body", "end_at"]]
    await _assert_unchanged(api, created)


async def test_end_at_before_start_at_in_the_same_patch_is_422(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api)
    change = {"start_at": in_hours(8), "end_at": in_hours(7)}

    response = await api.patch(f"{MAILINGS}/{created['id']}", json=change)

    assert response.status_code == 422
    assert error_locs(response) == [["body", "end_at"]]


@pytest.mark.parametrize("field", ["text", "start_at", "end_at", "filter"])
async def test_null_for_a_required_field_is_422_naming_it(
    api: httpx.AsyncClient, field: str
) -> None:
    created = await create_mailing(api)

    response = await api.patch(f"{MAILINGS}/{created['id']}", json={field: None})

    assert response.status_code == 422
    assert error_locs(response) == [["body", field]]
    await _assert_unchanged(api, created)


async def test_unknown_field_is_422_naming_it(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api)

    response = await api.patch(f"{MAILINGS}/{created['id']}", json={"status": "running"})

    assert response.status_code == 422
    assert error_locs(response) == [["body", "status"]]
    await _assert_unchanged(api, created)


async def test_null_end_at_beside_a_start_at_is_422_not_500(api: httpx.AsyncClient) -> None:
    created = await create_mailing(api)

    response = await api.patch(
        f"{MAILINGS}/{created['id']}", json={"start_at": in_hours(3), "end_at": None}
    )

    assert response.status_code == 422
    assert error_locs(response) == [["body", "end_at"]]
    await _assert_unchanged(api, created)
