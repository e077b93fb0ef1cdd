from datetime import UTC, datetime, timedelta

import httpx

from tests.api.conftest import create_client


async def test_client_roundtrip(api: httpx.AsyncClient) -> None:
    client = await create_client(api)
    response = await api.get(f"/api/v1/clients/{client['id']}")
    assert response.status_code == 200
    assert response.json()["operator_code"] == "916"


async def test_mailing_create_and_stats(api: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    body = {
        "start_at": now.isoformat(),
        "end_at": (now + timedelta(hours=1)).isoformat(),
        "text": "hello",
        "filter": {"tags": ["a"]},
    }
    response = await api.post("/api/v1/mailings", json=body)
    assert response.status_code == 201, response.text
    stats = (await api.get("/api/v1/stats")).json()
    assert stats["mailings"][0]["total"] == 0
