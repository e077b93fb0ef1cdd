"""Prometheus metrics: one series per route template, not per requested id."""

import httpx

from tests.api.seed import CLIENTS


async def test_requests_are_counted_by_route_template(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    for client_id in (101, 102, 103):
        assert (await api.get(f"{CLIENTS}/{client_id}")).status_code == 404

    text = (await anon.get("/metrics")).text

    assert 'route="/clients/{client_id}",status="404"' in text
    assert "/clients/101" not in text
    assert "/clients/102" not in text
