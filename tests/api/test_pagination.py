"""Keyset pagination of ``GET /api/v1/clients``: limits, cursors and filters (SPEC §3)."""

import base64

import httpx
import pytest

from tests.api.seed import CLIENTS, create_client, error_locs, item_ids, walk


async def _create_clients(api: httpx.AsyncClient, specs: list[tuple[str, str]]) -> list[int]:
    """One client per ``(operator_code, tag)``, with distinct phones; their ids in order."""
    ids = []
    for number, (operator_code, tag) in enumerate(specs):
        phone = f"7{operator_code}{number:07d}"
        ids.append((await create_client(api, phone=phone, tag=tag))["id"])
    return ids


def _cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def test_empty_list(api: httpx.AsyncClient) -> None:
    response = await api.get(CLIENTS)

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_limit_caps_the_page(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", "")] * 5)

    page = (await api.get(CLIENTS, params={"limit": 2})).json()

    assert [item["id"] for item in page["items"]] == ids[:2]
    assert isinstance(page["next_cursor"], str)


async def test_default_limit_is_fifty(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", "")] * 51)

    pages = await walk(api, CLIENTS)

    assert [len(page["items"]) for page in pages] == [50, 1]
    assert item_ids(pages) == ids


async def test_items_carry_every_client_field(api: httpx.AsyncClient) -> None:
    created = await create_client(api, phone="79161234567", tag="vip", timezone="Asia/Tokyo")

    page = (await api.get(CLIENTS)).json()

    assert page == {"items": [created], "next_cursor": None}


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (6, 3), (1, 1), (5, 500), (4, 1)])
async def test_cursor_walk_returns_every_client_once(
    api: httpx.AsyncClient, count: int, limit: int
) -> None:
    ids = await _create_clients(api, [("916", "")] * count)

    pages = await walk(api, CLIENTS, limit=limit)

    assert item_ids(pages) == ids  # in id order, none missing, none repeated
    assert all(len(page["items"]) == limit for page in pages[:-1])
    # The page holding the last client says so: no trailing empty page to fetch.
    assert pages[-1]["items"], "the last page is empty"
    assert len(pages) == -(-count // limit)


async def test_clients_created_during_a_walk_appear_once(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", "")] * 4)
    first = (await api.get(CLIENTS, params={"limit": 2})).json()

    late = await create_client(api, phone="79990000000")
    rest = await walk(api, CLIENTS, limit=2, cursor=first["next_cursor"])

    assert item_ids([first, *rest]) == [*ids, late["id"]]


async def test_cursor_survives_deleting_its_client(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", "")] * 5)
    first = (await api.get(CLIENTS, params={"limit": 2})).json()

    assert (await api.delete(f"{CLIENTS}/{ids[1]}")).status_code == 204
    rest = await walk(api, CLIENTS, limit=2, cursor=first["next_cursor"])

    assert item_ids(rest) == ids[2:]


async def test_filter_by_operator_code(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", "a"), ("903", "a"), ("916", "b"), ("926", "")])

    pages = await walk(api, CLIENTS, operator_code="916", limit=1)

    assert item_ids(pages) == [ids[0], ids[2]]
    assert all(item["operator_code"] == "916" for page in pages for item in page["items"])


async def test_filter_by_tag_is_exact_and_case_sensitive(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", "vip"), ("916", "VIP"), ("916", "vip2")])
    await _create_clients(api, [("903", "")])

    assert item_ids(await walk(api, CLIENTS, tag="vip")) == [ids[0]]
    assert item_ids(await walk(api, CLIENTS, tag="VIP")) == [ids[1]]
    assert item_ids(await walk(api, CLIENTS, tag="vi")) == []


async def test_filter_by_empty_tag(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", ""), ("916", "vip"), ("903", "")])

    assert item_ids(await walk(api, CLIENTS, tag="")) == [ids[0], ids[2]]


async def test_filters_combine_with_pagination(api: httpx.AsyncClient) -> None:
    specs = [("916", "vip"), ("903", "vip"), ("916", ""), ("916", "vip")] * 5
    ids = await _create_clients(api, specs)
    expected = [i for i, spec in zip(ids, specs, strict=True) if spec == ("916", "vip")]

    pages = await walk(api, CLIENTS, operator_code="916", tag="vip", limit=3)

    assert item_ids(pages) == expected
    assert [len(page["items"]) for page in pages] == [3, 3, 3, 1]


async def test_filter_matching_nobody(api: httpx.AsyncClient) -> None:
    await _create_clients(api, [("916", "vip")])

    response = await api.get(CLIENTS, params={"operator_code": "999", "tag": "vip"})

    assert response.json() == {"items": [], "next_cursor": None}


async def test_cursor_from_one_filter_continues_the_same_filter(api: httpx.AsyncClient) -> None:
    ids = await _create_clients(api, [("916", ""), ("903", ""), ("916", ""), ("903", "")])
    first = (await api.get(CLIENTS, params={"operator_code": "903", "limit": 1})).json()

    rest = await walk(api, CLIENTS, operator_code="903", limit=1, cursor=first["next_cursor"])

    assert item_ids([first, *rest]) == [ids[1], ids[3]]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "",
        "====",
        _cursor_of("hello world"),
        _cursor_of("id:"),
        _cursor_of("id:abc"),
        _cursor_of("id:-1"),
        _cursor_of("id:1.5"),
        _cursor_of(f"id:{2**63}"),
        _cursor_of("page:3"),
        _cursor_of("id:\u0663"),  # an Arabic-Indic digit
        "a" * 65,
        "Ω",
    ],
)
async def test_invalid_cursor_is_422(api: httpx.AsyncClient, cursor: str) -> None:
    await _create_clients(api, [("916", "")])

    response = await api.get(CLIENTS, params={"cursor": cursor})

    assert response.status_code == 422, response.text
    assert error_locs(response) == [["query", "cursor"]]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "abc", "1.5", str(2**64)])
async def test_invalid_limit_is_422(api: httpx.AsyncClient, limit: str) -> None:
    response = await api.get(CLIENTS, params={"limit": limit})

    assert response.status_code == 422, response.text
    assert ["query", "limit"] in error_locs(response)


@pytest.mark.parametrize("limit", [1, 500])
async def test_limit_bounds_are_accepted(api: httpx.AsyncClient, limit: int) -> None:
    response = await api.get(CLIENTS, params={"limit": limit})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("operator_code", "91"),
        ("operator_code", "9a6"),
        ("operator_code", "\u0669\u0661\u0666"),
        ("tag", "x" * 65),
        ("tag", "\x00"),
    ],
)
async def test_invalid_filter_is_422(api: httpx.AsyncClient, name: str, value: str) -> None:
    response = await api.get(CLIENTS, params={name: value})

    assert response.status_code == 422, response.text
    assert ["query", name] in error_locs(response)
