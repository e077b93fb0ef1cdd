"""Time: a future mailing starts by itself on time, and nothing is sent at or after end_at."""

import time

from tests.e2e.helpers import Api, Stub, instant, seed
from tests.e2e.stack import Stack
from tests.waiting import eventually

START_IN_S = 20.0
START_TOLERANCE_S = 2.0
END_IN_S = 20.0
SETTLE_AFTER_END_S = 60.0  # SPEC §5.4: every message final by end_at + 60 s


async def test_a_mailing_due_in_20_s_starts_by_itself_within_2_s_of_start_at(
    stack: Stack, api: Api, stub: Stub
) -> None:
    run_id, _ = await seed(stack.database_url, 10)
    created = await api.create_mailing(run_id, start_in_s=START_IN_S)
    start_at = instant(created["start_at"])

    await eventually(
        lambda: api.mailing(created["id"]),
        lambda mailing: mailing["status"] != "scheduled",
        START_IN_S + 10,
        interval_s=0.05,
    )
    seen_running_at = time.time()
    mailing = await api.settled(created["id"], 30)
    messages = await api.messages(created["id"])
    ids = {message["id"] for message in messages}
    requests = [instant(entry["received_at"]) for entry in await stub.journal()]

    assert created["status"] == "scheduled"
    assert start_at <= seen_running_at <= start_at + START_TOLERANCE_S
    assert start_at <= min(instant(message["created_at"]) for message in messages)
    assert len(requests) == len(ids) == 10
    assert start_at <= min(requests) <= start_at + START_TOLERANCE_S
    assert mailing["stats"]["by_status"]["sent"] == 10


async def test_with_the_provider_down_nothing_is_sent_at_or_after_end_at(
    stack: Stack, api: Api, stub: Stub
) -> None:
    await stub.behave(error_rate=1.0, error_status=503)
    run_id, _ = await seed(stack.database_url, 50)
    created = await api.create_mailing(run_id, end_in_s=END_IN_S)
    end_at = instant(created["end_at"])

    mailing = await api.settled(created["id"], END_IN_S + SETTLE_AFTER_END_S)
    settled_at = time.time()
    messages = await api.messages(created["id"])
    ids = {message["id"] for message in messages}
    journal = await stub.journal()

    assert {entry["msg_id"] for entry in journal} == ids
    assert [entry for entry in journal if instant(entry["received_at"]) >= end_at] == []
    assert {entry["outcome"] for entry in journal} == {"503"}
    assert len(messages) == 50
    assert {message["status"] for message in messages} <= {"expired", "failed"}
    assert settled_at <= end_at + SETTLE_AFTER_END_S
    assert mailing["stats"]["by_status"]["sent"] == 0
