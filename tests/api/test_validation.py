"""The input traps of SPEC §2: each is a 422 that names the field, and stores nothing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.seed import CLIENTS, MAILINGS, create_client, error_locs, row_count

ARABIC_INDIC = "\u0667\u0669\u0661\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667"  # 79161234567


def _mailing(**fields: Any) -> dict[str, Any]:
    """A valid body for a mailing that starts in an hour, with ``fields`` replaced."""
    start = datetime.now(UTC) + timedelta(hours=1)
    body = {
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(hours=1)).isoformat(),
        "text": "Spring sale",
    }
    return {**body, **fields}


# --- clients -------------------------------------------------------------------------------

CLIENT_TRAPS = [
    ("phone", "89161234567"),
    ("phone", "+79161234567"),
    ("phone", "7916123456"),
    ("phone", "791612345678"),
    ("phone", "79161234567\n"),
    ("phone", " 79161234567"),
    ("phone", "7916123456 "),
    ("phone", "7(916)12345"),
    ("phone", ARABIC_INDIC),
    ("phone", "7916123456\u0667"),
    ("phone", "7\uff19\uff11\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17"),  # full-width
    ("phone", 79161234567),
    ("phone", ""),
    ("phone", None),
    ("phone", ["79161234567"]),
    ("operator_code", "91"),
    ("operator_code", "9a6"),
    ("operator_code", "9166"),
    ("operator_code", 916),
    ("operator_code", "\u0669\u0661\u0666"),
    ("tag", "x" * 65),
    ("tag", "bad\x00tag"),
    ("tag", 5),
    ("timezone", "localtime"),
    ("timezone", ""),
    ("timezone", "../etc/passwd"),
    ("timezone", "/usr/share/zoneinfo/Europe/Moscow"),
    ("timezone", "UTC+3"),
    ("timezone", "+03:00"),
    ("timezone", "Europe/Moskow"),
    ("timezone", "posixrules"),
    ("timezone", "posix/Europe/Moscow"),
    ("timezone", "right/UTC"),
    ("timezone", "Factory"),
    ("timezone", "europe/moscow"),
    ("timezone", "EUROPE/MOSCOW"),
    ("timezone", "Europe/Moscow "),
    ("timezone", "Europe/Moscow\n"),
    ("timezone", "Europe/Moscow" + "x" * 287),
    ("timezone", None),
]


@pytest.mark.parametrize(("field", "value"), CLIENT_TRAPS)
async def test_client_create_trap(
    api: httpx.AsyncClient, engine: AsyncEngine, field: str, value: Any
) -> None:
    response = await api.post(CLIENTS, json={"phone": "79161234567", field: value})

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locs(response)
    assert await row_count(engine, "clients") == 0


@pytest.mark.parametrize(("field", "value"), CLIENT_TRAPS)
async def test_client_patch_trap(api: httpx.AsyncClient, field: str, value: Any) -> None:
    client = await create_client(api, phone="79031234567", tag="keep")

    response = await api.patch(f"{CLIENTS}/{client['id']}", json={field: value})

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locs(response)
    assert (await api.get(f"{CLIENTS}/{client['id']}")).json() == client


async def test_client_without_phone(api: httpx.AsyncClient) -> None:
    response = await api.post(CLIENTS, json={"tag": "vip"})

    assert response.status_code == 422
    assert ["body", "phone"] in error_locs(response)


async def test_client_unknown_field(api: httpx.AsyncClient) -> None:
    response = await api.post(CLIENTS, json={"phone": "79161234567", "filters": {}})

    assert response.status_code == 422
    assert ["body", "filters"] in error_locs(response)


@pytest.mark.parametrize(
    "zone", ["Etc/GMT-3", "America/Argentina/Buenos_Aires", "UTC", "Europe/Moscow"]
)
async def test_timezone_accepted(api: httpx.AsyncClient, zone: str) -> None:
    client = await create_client(api, timezone=zone)

    assert client["timezone"] == zone
    assert (await api.get(f"{CLIENTS}/{client['id']}")).json()["timezone"] == zone


async def test_longest_tag_accepted(api: httpx.AsyncClient) -> None:
    client = await create_client(api, tag="\u00e9" * 64)

    assert client["tag"] == "\u00e9" * 64


# --- mailings ------------------------------------------------------------------------------

_PAST = datetime.now(UTC) - timedelta(days=2)

MAILING_TRAPS = [
    ({"text": "   "}, ["body", "text"]),
    ({"text": "\n\t "}, ["body", "text"]),
    ({"text": ""}, ["body", "text"]),
    ({"text": "x" * 2001}, ["body", "text"]),
    ({"text": "hello\x00world"}, ["body", "text"]),
    ({"text": 42}, ["body", "text"]),
    ({"text": None}, ["body", "text"]),
    ({"start_at": "2030-01-01T09:00:00"}, ["body", "start_at"]),
    ({"end_at": "2030-01-01T09:00:00"}, ["body", "end_at"]),
    ({"start_at": 1893456000}, ["body", "start_at"]),
    ({"end_at": 1893456000.5}, ["body", "end_at"]),
    ({"start_at": "tomorrow"}, ["body", "start_at"]),
    ({"start_at": None}, ["body", "start_at"]),
    ({"start_at": "2030-01-01T09:00:00Z", "end_at": "2030-01-01T09:00:00Z"}, ["body", "end_at"]),
    (
        {"start_at": "2030-01-01T09:00:00+03:00", "end_at": "2030-01-01T06:00:00Z"},
        ["body", "end_at"],
    ),
    ({"start_at": "2030-01-01T10:00:00Z", "end_at": "2030-01-01T09:00:00Z"}, ["body", "end_at"]),
    (
        {"start_at": _PAST.isoformat(), "end_at": (_PAST + timedelta(days=1)).isoformat()},
        ["body", "end_at"],
    ),
    ({"send_window": {"start": "09:00", "end": "09:00"}}, ["body", "send_window", "end"]),
    ({"send_window": {"start": "24:00", "end": "09:00"}}, ["body", "send_window", "start"]),
    ({"send_window": {"start": "09:00", "end": "24:00"}}, ["body", "send_window", "end"]),
    ({"send_window": {"start": "9:00", "end": "18:00"}}, ["body", "send_window", "start"]),
    ({"send_window": {"start": "09:60", "end": "18:00"}}, ["body", "send_window", "start"]),
    ({"send_window": {"start": "09:00:00", "end": "18:00"}}, ["body", "send_window", "start"]),
    ({"send_window": {"start": "09:00"}}, ["body", "send_window", "end"]),
    (
        {"send_window": {"start": "09:00", "end": "18:00", "tz": "UTC"}},
        ["body", "send_window", "tz"],
    ),
    ({"filter": {"operator_code": ["916"]}}, ["body", "filter", "operator_code"]),
    ({"filter": {"tags": ["vip"], "regions": []}}, ["body", "filter", "regions"]),
    ({"filter": {"operator_codes": ["91"]}}, ["body", "filter", "operator_codes", 0]),
    ({"filter": {"operator_codes": ["916", "9a6"]}}, ["body", "filter", "operator_codes", 1]),
    ({"filter": {"operator_codes": [916]}}, ["body", "filter", "operator_codes", 0]),
    ({"filter": {"operator_codes": "916"}}, ["body", "filter", "operator_codes"]),
    ({"filter": {"tags": ["x" * 65]}}, ["body", "filter", "tags", 0]),
    ({"filter": []}, ["body", "filter"]),
    ({"filters": {"tags": ["vip"]}}, ["body", "filters"]),
]


@pytest.mark.parametrize(("fields", "loc"), MAILING_TRAPS)
async def test_mailing_create_trap(
    api: httpx.AsyncClient, engine: AsyncEngine, fields: dict[str, Any], loc: list[Any]
) -> None:
    response = await api.post(MAILINGS, json=_mailing(**fields))

    assert response.status_code == 422, response.text
    assert loc in error_locs(response)
    assert await row_count(engine, "mailings") == 0


@pytest.mark.parametrize("field", ["start_at", "end_at", "text"])
async def test_mailing_missing_field(api: httpx.AsyncClient, field: str) -> None:
    body = _mailing()
    del body[field]

    response = await api.post(MAILINGS, json=body)

    assert response.status_code == 422
    assert ["body", field] in error_locs(response)


@pytest.mark.parametrize(
    ("path", "content_type", "content"),
    [
        (CLIENTS, "application/json", b"phone=79161234567"),
        (CLIENTS, "application/json", b'{"phone": "79161234567"'),
        (CLIENTS, "application/json", b""),
        (CLIENTS, "text/plain", b"hello"),
        (MAILINGS, "application/json", b"<mailing/>"),
        (MAILINGS, "application/json", b"[1, 2]"),
        (MAILINGS, "application/json", b'"text"'),
        (MAILINGS, "application/json", b"null"),
    ],
)
async def test_body_that_is_not_a_json_object(
    api: httpx.AsyncClient, engine: AsyncEngine, path: str, content_type: str, content: bytes
) -> None:
    response = await api.post(path, content=content, headers={"Content-Type": content_type})

    assert response.status_code == 422, response.text
    assert all(loc[0] == "body" for loc in error_locs(response))
    assert await row_count(engine, "clients") + await row_count(engine, "mailings") == 0


async def test_body_that_is_not_utf8(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    # Not text at all (RFC 8259 requires UTF-8): a malformed request rather than a bad field.
    response = await api.post(
        CLIENTS, content=b'{"phone": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["detail"]
    assert await row_count(engine, "clients") == 0


TRICKY_TEXTS = [
    "He said \"hi\" and 'bye'",
    "C:\\Users\\\\new\\n not a newline",
    "line one\nline two\r\nline three\ttabbed",
    "emoji \U0001f600\U0001f44d\U0001f3fd flags \U0001f1f7\U0001f1fa",
    "zwj family \U0001f468\u200d\U0001f469\u200d\U0001f467 and a variation \u2764\ufe0f",
    "<script>alert(1)</script> & %s %d {text} $1 ' OR 1=1 --",
    "  leading and trailing spaces  ",
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435",
    "x" * 2000,
    "\U0001f600" * 2000,
]


@pytest.mark.parametrize("message_text", TRICKY_TEXTS)
async def test_text_is_kept_byte_for_byte(
    api: httpx.AsyncClient, engine: AsyncEngine, message_text: str
) -> None:
    response = await api.post(MAILINGS, json=_mailing(text=message_text))

    assert response.status_code == 201, response.text
    mailing = response.json()
    assert mailing["text"] == message_text
    fetched = (await api.get(f"{MAILINGS}/{mailing['id']}")).json()
    assert fetched["text"].encode("utf-8") == message_text.encode("utf-8")
    async with engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT text FROM mailings WHERE id = :id"), {"id": mailing["id"]}
        )
    assert stored == message_text


async def test_valid_window_and_filter_accepted(api: httpx.AsyncClient) -> None:
    body = _mailing(
        send_window={"start": "22:00", "end": "06:00"},
        filter={"operator_codes": ["916", "903"], "tags": ["vip", ""]},
    )

    response = await api.post(MAILINGS, json=body)

    assert response.status_code == 201, response.text
    assert response.json()["send_window"] == {"start": "22:00", "end": "06:00"}
    assert response.json()["filter"] == {"operator_codes": ["916", "903"], "tags": ["vip", ""]}


async def test_offsets_are_kept_as_instants(api: httpx.AsyncClient) -> None:
    body = _mailing(start_at="2030-01-01T12:00:00+03:00", end_at="2030-01-01T10:00:00Z")

    response = await api.post(MAILINGS, json=body)

    assert response.status_code == 201, response.text
    start_at = datetime.fromisoformat(response.json()["start_at"])
    assert start_at == datetime(2030, 1, 1, 9, tzinfo=UTC)
