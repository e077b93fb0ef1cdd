"""The provider down for 30 s, or refusing our token for a while: every message is sent once
it is back, with its one msgId, and a refused token does not burn through the queue."""

import asyncio
import time

from tests.e2e.stack import Shape
from tests.faults.checks import judge, report, tracebacks
from tests.faults.conftest import Staging

CLIENTS = 500
DOWN_S = 30.0
REFUSED_S = 10.0
SETTLE_S = 150.0
PREFETCH = 50
MAX_ATTEMPTS = 8
SHAPE = Shape(senders=2, settings={"MAILER_SENDER_PREFETCH": str(PREFETCH)})


async def test_the_provider_down_for_30_s(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        await scene.stub.behave(error_rate=1.0, error_status=503)
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS)
        await asyncio.sleep(DOWN_S)
        await scene.stub.behave(error_rate=0.0)
        back_at = time.time()

        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id, back_at)
        journal = await scene.stub.journal()
        errors = tracebacks(scene, "sender-1", "sender-2", "status", "planner")

    report("provider down (503) for 30 s", figures)
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == figures.duplicate_successes == 0
    assert sum(entry["outcome"] == "503" for entry in journal) >= CLIENTS, "it really was down"
    assert errors == [], "an expected fault is no traceback"


async def test_the_provider_refusing_the_token_for_a_while(staged: Staging) -> None:
    async with staged(SHAPE) as scene:
        token = scene.stack.plan.services[0].env["MAILER_STUB_TOKEN"]
        await scene.stub.behave(token="a-token-the-senders-do-not-have")
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS)
        await asyncio.sleep(REFUSED_S)
        await scene.stub.behave(token=token)
        back_at = time.time()

        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id, back_at)
        journal = await scene.stub.journal()
        logged = "\n".join(scene.stack.lines)

    refused = sum(entry["outcome"] == "unauthorized" for entry in journal)
    report("provider refusing the token (401) for 10 s", figures)
    print(f"faults | unauthorized requests during the refusal: {refused}")
    assert mailing["stats"]["by_status"]["sent"] == CLIENTS
    assert figures.lost == figures.duplicate_successes == 0
    assert 0 < refused <= 2 * 2 * PREFETCH, "the senders backed off instead of burning the queue"
    assert token not in logged


async def test_the_provider_answering_garbage_or_hanging(staged: Staging) -> None:
    settings = {
        "MAILER_SENDER_PREFETCH": str(PREFETCH),
        "MAILER_SENDER_REQUEST_TIMEOUT_S": "1",
        "MAILER_SENDER_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }
    async with staged(Shape(senders=2, settings=settings)) as scene:
        # Non-JSON, {}, {"code": 1} and {"code": "0"} answers, and requests never answered.
        await scene.stub.behave(malformed_rate=0.2, hang_rate=0.05)
        run_id, mailing_id = await scene.mailing_under_way(CLIENTS)

        mailing = await scene.api.reaches(mailing_id, "finished", SETTLE_S)
        figures = await judge(scene, mailing_id, run_id)
        messages = await scene.api.messages(mailing_id)
        journal = await scene.stub.journal()
        errors = tracebacks(scene, "sender-1", "sender-2", "status", "planner")

    outcomes = {entry["outcome"] for entry in journal}
    by_status = mailing["stats"]["by_status"]
    report("provider answering garbage (20 %) and hanging (5 %)", figures)
    assert {"not-json", "empty-object", "code-1", "code-string-0", "hang"} <= outcomes
    assert figures.lost == figures.duplicate_successes == 0
    # A message unlucky on every attempt fails once its attempts are spent (one in ~20,000
    # messages at these rates); every other one is sent.
    assert by_status["sent"] + by_status["failed"] == CLIENTS
    assert all(m["attempts"] == MAX_ATTEMPTS for m in messages if m["status"] == "failed")
    assert errors == []
