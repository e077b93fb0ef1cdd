"""``GET /_stub/summary``: exact counts of what the stub received and how it answered."""

from collections import Counter

import httpx
import pytest

from tests.provider_stub.helpers import Stub, send


async def test_two_successes_for_one_msg_id_are_a_duplicate(stub: Stub) -> None:
    for _ in range(2):
        assert (await send(stub.client, 1)).status_code == 200

    summary = await stub.summary()

    assert summary == {
        "requests": 2,
        "unique_msg_ids": 1,
        "successes": 2,
        "duplicate_successes": 1,
        "by_outcome": {"ok": 2},
    }


async def test_retries_after_errors_are_not_duplicates(stub: Stub) -> None:
    await stub.script(1, ["503", "429", "ok"])

    for _ in range(3):
        await send(stub.client, 1)
    await send(stub.client, 2)

    summary = await stub.summary()
    assert (summary["successes"], summary["duplicate_successes"]) == (2, 0)
    assert (summary["requests"], summary["unique_msg_ids"]) == (4, 2)


async def test_counts_by_outcome_match_the_journal(stub: Stub) -> None:
    await stub.script(1, ["503", "not-json", "empty-object", "code-1", "drop", "ok"])
    for _ in range(4):
        await send(stub.client, 1)
    with pytest.raises(httpx.RemoteProtocolError):
        await send(stub.client, 1)
    await send(stub.client, 1)
    await send(stub.client, 2, headers={"Authorization": "Bearer wrong"})
    await send(stub.client, 3, {"id": 3})
    await send(stub.client, "abc", {"id": 3})

    summary = await stub.summary()
    journal = await stub.journal()

    assert summary["by_outcome"] == {
        "503": 1,
        "not-json": 1,
        "empty-object": 1,
        "code-1": 1,
        "drop": 1,
        "ok": 1,
        "unauthorized": 1,
        "bad-request": 2,
    }
    assert Counter(entry["outcome"] for entry in journal) == summary["by_outcome"]
    assert summary["requests"] == len(journal) == 9
    # "abc" is no msgId; 1, 2 and 3 are.
    assert summary["unique_msg_ids"] == 3
    assert (summary["successes"], summary["duplicate_successes"]) == (1, 0)


async def test_success_the_client_never_saw_is_not_counted(stub: Stub) -> None:
    await stub.behaviour(latency_ms=500)

    with pytest.raises(httpx.ReadTimeout):
        await send(stub.client, 5, timeout_s=0.1)

    entry = await stub.settled_entry()
    assert (entry["outcome"], entry["client_disconnected"]) == ("ok", True)
    summary = await stub.summary()
    assert (summary["successes"], summary["duplicate_successes"]) == (0, 0)
    assert (summary["requests"], summary["by_outcome"]) == (1, {"ok": 1})


async def test_clearing_the_journal_resets_the_counts(stub: Stub) -> None:
    await send(stub.client, 1)
    await send(stub.client, 1)

    await stub.client.delete("/_stub/journal")
    await send(stub.client, 1)

    summary = await stub.summary()
    assert (summary["requests"], summary["successes"], summary["duplicate_successes"]) == (1, 1, 0)
