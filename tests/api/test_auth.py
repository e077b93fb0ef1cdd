"""Every ``/api/v1`` route needs the bearer token; the probes and docs do not (SPEC §3)."""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import API_PREFIX
from tests.api.seed import API_TOKEN, CLIENTS, MAILINGS, create_client


def _api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every documented ``/api/v1`` route, path parameters filled with ``1``.

    A route left out of the OpenAPI document would be missed here; the app has none under
    ``/api/v1``, and the guard in ``api_routes`` below catches an enumeration gone empty.
    """
    return sorted(
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith(API_PREFIX)
    )


@pytest.fixture
def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = _api_routes(app)
    # Guard against an enumeration that finds nothing and so checks nothing.
    assert ("POST", f"{API_PREFIX}/clients") in routes
    assert ("DELETE", f"{API_PREFIX}/mailings/1") in routes
    assert ("GET", f"{API_PREFIX}/stats") in routes
    assert len(routes) >= 13
    return routes


BAD_HEADERS = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong-token"),
    pytest.param({"Authorization": f"Bearer {API_TOKEN}x"}, id="token-plus-one"),
    pytest.param({"Authorization": f"Bearer {API_TOKEN[:-1]}"}, id="token-prefix"),
    pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
    pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
    pytest.param({"Authorization": f"Basic {API_TOKEN}"}, id="basic-scheme"),
    pytest.param({"Authorization": f"Token {API_TOKEN}"}, id="token-scheme"),
    pytest.param({"Authorization": API_TOKEN}, id="no-scheme"),
    pytest.param({"X-API-Token": API_TOKEN}, id="other-header"),
]

# Valid bodies, so that only the missing token can be the reason for a refusal.
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", CLIENTS): {"phone": "79161234567"},
    ("PATCH", f"{CLIENTS}/1"): {"tag": "changed"},
    ("POST", MAILINGS): {
        "start_at": "2030-01-01T09:00:00Z",
        "end_at": "2030-01-01T10:00:00Z",
        "text": "hello",
    },
    ("PATCH", f"{MAILINGS}/1"): {"text": "changed"},
}


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.url, response.text)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "missing or invalid bearer token"}
    assert API_TOKEN not in response.text


@pytest.mark.parametrize("headers", BAD_HEADERS)
async def test_every_api_route_needs_the_token(
    anon: httpx.AsyncClient, api_routes: list[tuple[str, str]], headers: dict[str, str]
) -> None:
    for method, path in api_routes:
        response = await anon.request(
            method, path, json=_BODIES.get((method, path)), headers=headers
        )
        _assert_401(response)


async def test_refused_requests_change_nothing(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    client = await create_client(api, tag="original")
    headers = {"Authorization": "Bearer wrong-token"}

    for (method, path), body in _BODIES.items():
        _assert_401(await anon.request(method, path, json=body, headers=headers))
    _assert_401(await anon.delete(f"{CLIENTS}/{client['id']}", headers=headers))

    async with engine.connect() as connection:
        clients = (await connection.execute(text("SELECT id, tag FROM clients"))).all()
        mailings = await connection.scalar(text("SELECT count(*) FROM mailings"))
    assert [tuple(row) for row in clients] == [(client["id"], "original")]
    assert mailings == 0


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b'{"phone": 1}'],
    ids=["not-json", "not-utf8", "bad-field"],
)
async def test_401_comes_before_body_errors(anon: httpx.AsyncClient, content: bytes) -> None:
    # An anonymous caller learns nothing about the body's shape: the token is checked first.
    response = await anon.post(
        CLIENTS, content=content, headers={"Content-Type": "application/json"}
    )

    _assert_401(response)


async def test_401_comes_before_path_errors(anon: httpx.AsyncClient) -> None:
    _assert_401(await anon.get(f"{CLIENTS}/{10**30}"))
    _assert_401(await anon.get(CLIENTS, params={"cursor": "garbage", "limit": 0}))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_right_token_is_accepted(anon: httpx.AsyncClient, scheme: str) -> None:
    response = await anon.get(CLIENTS, headers={"Authorization": f"{scheme} {API_TOKEN}"})

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_token_in_query_string_is_not_accepted(anon: httpx.AsyncClient) -> None:
    for name in ("token", "access_token", "api_token"):
        _assert_401(await anon.get(CLIENTS, params={name: API_TOKEN}))


async def test_healthz_needs_no_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_reports_database_and_broker(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


async def test_docs_need_no_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()


async def test_openapi_needs_no_token_and_declares_bearer(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    schemes = schema["components"]["securitySchemes"]
    assert any(s == {"type": "http", "scheme": "bearer"} | s for s in schemes.values())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            protected = path.startswith(API_PREFIX)
            assert bool(operation.get("security")) == protected, (method, path)


async def test_metrics_need_no_token(anon: httpx.AsyncClient) -> None:
    await anon.get("/healthz")

    response = await anon.get("/metrics")

    assert response.status_code == 200
    assert "mailer_api_requests_total" in response.text
    assert response.headers["Content-Type"].startswith("text/plain")
