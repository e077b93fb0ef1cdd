"""A mailing to 1,000 clients reaches each of them exactly once, also with replicas racing."""

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.helpers import Api, Stub, clients_matching, messages_per_client, seed, successes
from tests.e2e.stack import API_TOKEN, Shape, Stack, running_stack

CLIENTS = 1_000
DELIVERY_TIMEOUT_S = 60.0
# Small chunks and batches, so that two planners interleave over many transactions.
RACING = Shape(
    planners=2,
    senders=3,
    settings={
        "MAILER_PLANNER_AUDIENCE_CHUNK_SIZE": "50",
        "MAILER_PLANNER_DISPATCH_BATCH_SIZE": "50",
    },
)


async def test_every_client_gets_the_message_once_and_the_figures_agree(
    stack: Stack, api: Api, stub: Stub
) -> None:
    run_id, _ = await seed(stack.database_url, CLIENTS)

    created = await api.create_mailing(run_id)
    mailing = await api.reaches(created["id"], "finished", DELIVERY_TIMEOUT_S)
    messages = await api.messages(created["id"])
    overall = await api.stats()
    summary = await stub.summary()
    journal = await stub.journal()

    stats = mailing["stats"]
    assert len(messages) == CLIENTS
    assert {message["status"] for message in messages} == {"sent"}
    assert successes(journal) == {message["id"]: 1 for message in messages}
    assert summary["duplicate_successes"] == 0
    assert summary["successes"] == summary["unique_msg_ids"] == CLIENTS
    assert stats["total"] == sum(stats["by_status"].values()) == CLIENTS
    assert stats["by_status"]["sent"] == summary["successes"]
    _agrees_with_overall_stats(overall, mailing)


async def test_two_planners_and_three_senders_make_one_message_and_one_success_per_client(
    tmp_path: Path,
) -> None:
    async with running_stack(RACING, tmp_path) as own:
        engine = create_async_engine(own.database_url)
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        async with (
            httpx.AsyncClient(base_url=own.api_url, headers=auth, timeout=10) as api_client,
            httpx.AsyncClient(base_url=own.stub_url, timeout=10) as stub_client,
        ):
            api, stub = Api(api_client), Stub(stub_client)
            run_id, _ = await seed(own.database_url, CLIENTS)
            created = await api.create_mailing(run_id)
            mailing = await api.reaches(created["id"], "finished", DELIVERY_TIMEOUT_S)
            messages = await api.messages(created["id"])
            summary = await stub.summary()
            journal = await stub.journal()
        per_client = await messages_per_client(engine, created["id"])
        audience = await clients_matching(engine, run_id)
        await engine.dispose()
        dispatched = {
            name: sum(event["event"] == "dispatch.batch" for event in own.events(name))
            for name in ("planner", "planner-2")
        }

    assert all(dispatched.values()), f"both planners took part: {dispatched}"
    assert len(audience) == CLIENTS
    assert per_client == dict.fromkeys(audience, 1)
    assert {message["status"] for message in messages} == {"sent"}
    assert successes(journal) == {message["id"]: 1 for message in messages}
    assert (summary["successes"], summary["duplicate_successes"]) == (CLIENTS, 0)
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS


def _agrees_with_overall_stats(overall: dict[str, Any], mailing: dict[str, Any]) -> None:
    """GET /stats lists the mailing with the same figures, and its totals add up."""
    [listed] = [entry for entry in overall["mailings"] if entry["id"] == mailing["id"]]
    assert listed["status"] == mailing["status"]
    assert (listed["total"], listed["by_status"]) == (
        mailing["stats"]["total"],
        mailing["stats"]["by_status"],
    )
    assert overall["total"] == sum(entry["total"] for entry in overall["mailings"])
    for status, count in overall["by_status"].items():
        assert count == sum(entry["by_status"][status] for entry in overall["mailings"])
