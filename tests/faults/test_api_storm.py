"""Bad and racing API input against the served API: a clear 4xx, never a 5xx, nothing changed."""

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.e2e.stack import API_TOKEN, Shape
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


async def test_schemathesis_against_the_served_api_finds_no_5xx(staged: Staging) -> None:
    """Every operation, with the token; rules JSON Schema cannot state are documented 422s."""
    st = Path(sys.executable).with_name("st")
    async with staged(Shape(senders=1)) as scene:
        command = [
            str(st), "run", f"{scene.stack.api_url}/openapi.json",
            "-H", f"Authorization: Bearer {API_TOKEN}",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "25", "--workers", "2", "--seed", "20261204",
        ]  # fmt: skip
        run = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=300
        )
        health = await scene.api.client.get("/readyz")

    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout
    assert health.status_code == 200, "the API is still ready after the storm"
