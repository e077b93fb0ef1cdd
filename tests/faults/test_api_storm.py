"""Bad and racing API input against the served API: a clear 4xx, never a 5xx, nothing changed."""

import asyncio
from collections import Counter

from tests.e2e.stack import Shape
from tests.faults.conftest import Staging

CREATES = 50


async def test_fifty_concurrent_creates_of_one_phone_make_one_client(staged: Staging) -> None:
    async with staged(Shape(senders=1)) as scene:
        body = {"phone": "79161234567", "tag": "storm", "timezone": "Europe/Moscow"}
        answers = await asyncio.gather(
            *(scene.api.client.post("/api/v1/clients", json=body) for _ in range(CREATES))
        )
        listed = await scene.api.client.get("/api/v1/clients", params={"tag": "storm"})

    codes = Counter(answer.status_code for answer in answers)
    assert codes == {201: 1, 409: CREATES - 1}
    assert all(
        "phone" in answer.json()["detail"] for answer in answers if answer.status_code == 409
    )
    assert [client["phone"] for client in listed.json()["items"]] == ["79161234567"]
