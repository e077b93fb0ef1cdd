"""``PUT /_stub/behaviour`` and the draw of an outcome from it."""

import asyncio
import random
import time
from collections import Counter
from typing import Any

import pytest

from services.provider_stub import outcomes
from services.provider_stub.outcomes import Behaviour
from tests.provider_stub.helpers import DEFAULT_BEHAVIOUR, TOKEN, Stub, send

MSG_ID = 9000


async def test_partial_update_keeps_omitted_keys(stub: Stub) -> None:
    first = await stub.behaviour(latency_ms=20, error_status=502)
    second = await stub.behaviour(error_rate=0.25)

    assert first == {**DEFAULT_BEHAVIOUR, "latency_ms": 20, "error_status": 502}
    assert second == {
        **DEFAULT_BEHAVIOUR,
        "latency_ms": 20,
        "error_status": 502,
        "error_rate": 0.25,
    }


async def test_behaviour_answer_never_shows_the_token(stub: Stub) -> None:
    response = await stub.client.put("/_stub/behaviour", json={"token": "a-brand-new-token"})

    assert response.status_code == 200
    assert response.json() == DEFAULT_BEHAVIOUR
    assert "a-brand-new-token" not in response.text
    assert TOKEN not in response.text


async def test_latency_delays_the_answer(stub: Stub) -> None:
    await stub.behaviour(latency_ms=300)

    started = time.monotonic()
    response = await send(stub.client, MSG_ID)
    elapsed_s = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed_s >= 0.3
    entry = await stub.only_entry()
    assert (entry["outcome"], entry["client_disconnected"]) == ("ok", False)


async def test_latency_does_not_hold_up_other_requests(stub: Stub) -> None:
    await stub.behaviour(latency_ms=300)

    started = time.monotonic()
    responses = await asyncio.gather(*(send(stub.client, MSG_ID + n) for n in range(20)))
    elapsed_s = time.monotonic() - started

    assert [response.status_code for response in responses] == [200] * 20
    assert 0.3 <= elapsed_s < 2.0


async def test_error_rate_1_answers_every_request_with_the_error_status(stub: Stub) -> None:
    await stub.behaviour(error_rate=1.0, error_status=502)

    statuses = [(await send(stub.client, MSG_ID + n)).status_code for n in range(10)]

    assert statuses == [502] * 10
    assert (await stub.summary())["by_outcome"] == {"502": 10}


async def test_malformed_rate_1_never_answers_code_0(stub: Stub) -> None:
    await stub.behaviour(malformed_rate=1.0)

    for n in range(10):
        response = await send(stub.client, MSG_ID + n)
        assert response.status_code == 200
        assert b'"code": 0' not in response.content

    by_outcome = (await stub.summary())["by_outcome"]
    assert set(by_outcome) <= {"not-json", "empty-object", "code-1", "code-string-0"}
    assert sum(by_outcome.values()) == 10


async def test_new_token_replaces_the_old_one(stub: Stub) -> None:
    await stub.behaviour(token="rotated-token-42")

    old = await send(stub.client, MSG_ID)
    new = await send(stub.client, MSG_ID, headers={"Authorization": "Bearer rotated-token-42"})

    assert (old.status_code, new.status_code) == (401, 200)
    assert [entry["authorized"] for entry in await stub.journal()] == [False, True]


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"hang_rate": -0.1}, "hang_rate"),
        ({"drop_rate": 2}, "drop_rate"),
        ({"malformed_rate": -1}, "malformed_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"error_status": 200}, "error_status"),
        ({"error_status": 600}, "error_status"),
        ({"token": ""}, "token"),
        ({"latency": 100}, "latency"),
        ({"error_rate": 0.6, "drop_rate": 0.5}, "must not exceed 1"),
        ({"hang_rate": 0.5, "malformed_rate": 0.3, "error_rate": 0.3}, "must not exceed 1"),
    ],
    ids=[
        "rate-above-1",
        "rate-negative",
        "drop-rate-2",
        "malformed-negative",
        "latency-negative",
        "status-200",
        "status-600",
        "empty-token",
        "unknown-key",
        "sum-1.1",
        "sum-of-three",
    ],
)
async def test_invalid_behaviour_is_4xx_and_changes_nothing(
    stub: Stub, patch: dict[str, Any], named: str
) -> None:
    await stub.behaviour(latency_ms=5)

    response = await stub.client.put("/_stub/behaviour", json=patch)

    assert 400 <= response.status_code < 500
    assert named in response.text
    assert await stub.behaviour() == {**DEFAULT_BEHAVIOUR, "latency_ms": 5}


async def test_sum_over_1_counts_the_rates_already_set(stub: Stub) -> None:
    await stub.behaviour(hang_rate=0.6)

    response = await stub.client.put("/_stub/behaviour", json={"drop_rate": 0.6})

    assert response.status_code == 422
    assert "must not exceed 1" in response.text


async def test_rates_summing_to_exactly_1_are_accepted(stub: Stub) -> None:
    # 0.2 + 0.4 + 0.3 + 0.1 is 1.0000000000000002 in floating point.
    rates = {"drop_rate": 0.2, "hang_rate": 0.4, "error_rate": 0.3, "malformed_rate": 0.1}

    response = await stub.client.put("/_stub/behaviour", json=rates)

    assert response.status_code == 200, response.text
    assert response.json() == {**DEFAULT_BEHAVIOUR, **rates}


async def test_behaviour_body_not_json_is_400(stub: Stub) -> None:
    response = await stub.client.put("/_stub/behaviour", content=b"latency_ms=5")

    assert response.status_code == 400
    assert "JSON" in response.text


# --- drawing an outcome, without HTTP ------------------------------------------------------


def _draws(behaviour: Behaviour, n: int, seed: int = 20240601) -> Counter[str]:
    rng = random.Random(seed)  # noqa: S311 - a seeded, repeatable draw, no secret
    return Counter(behaviour.draw(rng) for _ in range(n))


def test_error_rate_is_the_share_of_errors() -> None:
    drawn = _draws(Behaviour(error_rate=0.3, error_status=503), 2000)

    assert set(drawn) == {"ok", "503"}
    assert 0.25 <= drawn["503"] / 2000 <= 0.35


def test_each_fault_has_its_own_share() -> None:
    behaviour = Behaviour(drop_rate=0.1, hang_rate=0.2, error_rate=0.3, malformed_rate=0.2)

    drawn = _draws(behaviour, 5000)

    malformed = sum(drawn[name] for name in outcomes.MALFORMED)
    shares = {
        "drop": drawn["drop"] / 5000,
        "hang": drawn["hang"] / 5000,
        "error": drawn["503"] / 5000,
        "malformed": malformed / 5000,
        "ok": drawn["ok"] / 5000,
    }
    expected = {"drop": 0.1, "hang": 0.2, "error": 0.3, "malformed": 0.2, "ok": 0.2}
    assert shares == pytest.approx(expected, abs=0.03)
    assert all(drawn[name] > 0 for name in outcomes.MALFORMED)


def test_default_behaviour_always_draws_ok() -> None:
    assert _draws(Behaviour(), 1000) == {"ok": 1000}


def test_rates_of_1_always_draw_that_fault() -> None:
    assert _draws(Behaviour(hang_rate=1.0), 500) == {"hang": 500}
    assert _draws(Behaviour(error_rate=1.0, error_status=429), 500) == {"429": 500}
