"""``mailer status`` as a process: writes what it consumes, stops on SIGTERM with a summary."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.broker import Publisher
from tests.status.helpers import insert_mailing, mailing_status, publish, queued_messages, sent
from tests.waiting import eventually

MAILER = Path(sys.executable).with_name("mailer")


async def test_runs_until_sigterm_and_exits_cleanly(
    engine: AsyncEngine, database_url: str, vhost_url: str, publisher: Publisher, tmp_path: Path
) -> None:
    mailing_id = await insert_mailing(engine)
    [message_id] = await queued_messages(engine, mailing_id, 1)
    process = await asyncio.create_subprocess_exec(
        MAILER,
        "status",
        # Nothing from the run's environment but PATH, and no .env in the working directory.
        env={
            "PATH": os.environ.get("PATH", ""),
            "MAILER_DATABASE_URL": database_url,
            "MAILER_RABBITMQ_URL": vhost_url,
        },
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await publish(publisher, sent(message_id))
        await eventually(lambda: mailing_status(engine, mailing_id), lambda s: s == "finished", 10)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = [json.loads(line) for line in output.decode().splitlines()]

    assert process.returncode == 0
    events = [line["event"] for line in lines]
    assert [event for event in events if event.startswith("status.")] == [
        "status.started",
        "status.stopped",
    ]
    assert "mailing.finished" in events
    assert lines[-1]["acked"] == 1
