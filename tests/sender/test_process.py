"""``mailer sender`` as a process: configured by environment, sends, stops on SIGTERM."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.provider_stub.helpers import TOKEN
from tests.sender.helpers import TEXT, Pipeline

MAILER = Path(sys.executable).with_name("mailer")


async def test_sends_logs_by_id_and_stops_on_sigterm(pipeline: Pipeline, tmp_path: Path) -> None:
    database_url, vhost_url, stub_url = pipeline.urls
    [work] = await pipeline.messages()
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "MAILER_DATABASE_URL": database_url,
        "MAILER_RABBITMQ_URL": vhost_url,
        "MAILER_PROVIDER_URL": f"{stub_url}/v1",
        "TOKEN_SENDER": TOKEN,  # the name older deployments use
        "MAILER_SENDER_PREFETCH": "5",
    }
    process = await asyncio.create_subprocess_exec(
        str(MAILER),
        "sender",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await pipeline.publish(work)
        results = pipeline.results
        await results.wait_until(lambda: work.message_id in results.final(), timeout_s=15)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    log = output.decode()
    assert process.returncode == 0, log
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    names = [event["event"] for event in events]
    assert names[0] == "sender.started"
    # The test sees the result as soon as it is routed; the sender logs ``attempt.sent`` once
    # the broker's confirm is back, which can come after the SIGTERM's ``sender.stopping``.
    assert names[-1] == "sender.stopped"
    assert names.index("sender.stopping") < names.index("sender.stopped")
    [sent] = [event for event in events if event["event"] == "attempt.sent"]
    ids = (work.message_id, work.mailing_id, work.client_id)
    assert (sent["message_id"], sent["mailing_id"], sent["client_id"]) == ids
    assert results.final()[work.message_id].status == "sent"
    for secret_or_personal in (TOKEN, work.phone, TEXT.splitlines()[0]):
        assert secret_or_personal not in log
