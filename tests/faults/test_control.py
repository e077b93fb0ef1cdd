"""An operator changing a mailing mid-sending: its deadline moved closer, or the mailing deleted.
Every sender honours it within 2 s (SPEC §3), and nothing is sent at or after end_at (§5.1)."""

import time
from datetime import UTC, datetime, timedelta

from tests.e2e.helpers import instant, work_in_broker
from tests.e2e.stack import Shape
from tests.faults.checks import judge, report
from tests.faults.conftest import Staging
from tests.waiting import eventually

CLIENTS = 1_500
HONOURED_WITHIN_S = 2.0
SETTLE_AFTER_END_S = 60.0  # SPEC §5.4: every message final by end_at + 60 s
SHAPE = Shape(senders=2, settings={"MAILER_SENDER_PREFETCH": "50"})
# Slow enough (2 senders, 50 in flight each, 0.3 s a call: 333 messages/s at most) that the
# deadline moved 3 s ahead comes before all 1,500 are through.
CALL_S = 0.3
REACH_S = 0.1
"""Margin for a request to reach the stub and its answer to come back."""
SLOW = {"latency_ms": int(CALL_S * 1000)}


async def test_end_at_moved_closer_mid_mailing(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS, behaviour=SLOW, successes=200)

        end_at = datetime.now(UTC) + timedelta(seconds=3)
        answer = await scene.api.client.patch(
            f"/api/v1/mailings/{mailing_id}", json={"end_at": end_at.isoformat()}
        )
        settled = await scene.api.settled(mailing_id, 3 + SETTLE_AFTER_END_S)
        settled_at = time.time()
        figures = await judge(scene, mailing_id, run_id, in_flight_at_end_s=CALL_S + REACH_S)

    report("end_at moved 3 s ahead mid-mailing", figures)
    assert answer.status_code == 200, answer.text
    assert figures.late_requests == 0, "a request started at or after the new end_at"
    assert figures.lost == figures.duplicate_successes == 0
    by_status = settled["stats"]["by_status"]
    assert by_status["sent"] + by_status["expired"] == CLIENTS
    assert by_status["expired"] > 0, "the deadline came before the mailing was through"
    assert settled_at <= end_at.timestamp() + SETTLE_AFTER_END_S


async def test_a_mailing_deleted_mid_sending(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        _, mailing_id = await scene.mailing_under_way(CLIENTS, behaviour=SLOW, successes=200)

        deleted = await scene.api.client.delete(f"/api/v1/mailings/{mailing_id}")
        deleted_at = time.time()
        await eventually(lambda: work_in_broker(scene.stack.vhost_url), lambda n: n == 0, 60, 0.5)
        journal = await scene.stub.journal()
        gone = await scene.api.client.get(f"/api/v1/mailings/{mailing_id}")
        stats = await scene.api.stats()

    late = [e for e in journal if instant(e["received_at"]) > deleted_at + HONOURED_WITHIN_S]
    assert deleted.status_code == 204
    assert late == [], "a request started more than 2 s after the delete returned"
    assert gone.status_code == 404
    assert all(entry["id"] != mailing_id for entry in stats["mailings"])
