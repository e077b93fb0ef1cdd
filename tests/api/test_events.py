"""The API tells running planners and senders what changed, on the control fanout."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractQueue

from shared import topology
from tests.api.seed import CLIENTS, MAILINGS, create_client, create_mailing, in_hours
from tests.conftest import BROKER_URL

WAIT_S = 5.0


@pytest.fixture
async def control() -> AsyncIterator[AbstractQueue]:
    """A queue bound to the control fanout of the vhost the test API publishes to."""
    connection = await aio_pika.connect(BROKER_URL)
    channel = await connection.channel()
    yield await topology.declare_control_queue(channel)
    await connection.close()


async def _events(queue: AbstractQueue, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT_S):
        while len(found) < count:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            found.append(json.loads(message.body))
    return found


async def test_mailing_changes_are_announced(
    api: httpx.AsyncClient, control: AbstractQueue
) -> None:
    mailing = await create_mailing(api, start_at=in_hours(1), end_at=in_hours(2))
    path = f"{MAILINGS}/{mailing['id']}"
    assert (await api.patch(path, json={"text": "new"})).status_code == 200
    assert (await api.post(f"{path}/cancel")).status_code == 200
    assert (await api.delete(path)).status_code == 204

    events = await _events(control, 4)

    assert [(e["kind"], e["mailing_id"]) for e in events] == [
        ("mailing_created", mailing["id"]),
        ("mailing_changed", mailing["id"]),
        ("mailing_cancelled", mailing["id"]),
        ("mailing_deleted", mailing["id"]),
    ]


async def test_client_delete_is_announced(api: httpx.AsyncClient, control: AbstractQueue) -> None:
    client = await create_client(api)
    assert (await api.delete(f"{CLIENTS}/{client['id']}")).status_code == 204

    [event] = await _events(control, 1)

    assert event["kind"] == "client_deleted"
    assert event["client_id"] == client["id"]


async def test_a_refused_change_announces_nothing(
    api: httpx.AsyncClient, control: AbstractQueue
) -> None:
    missing = await api.post(f"{MAILINGS}/999999/cancel")
    assert missing.status_code == 404
    mailing = await create_mailing(api, start_at=in_hours(1), end_at=in_hours(2))

    [event] = await _events(control, 1)

    assert (event["kind"], event["mailing_id"]) == ("mailing_created", mailing["id"])
