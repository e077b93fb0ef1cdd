"""``mailer planner`` as a process: ticks, dispatches, and stops cleanly on SIGTERM."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.statuses import MessageStatus
from tests.planner.helpers import add_clients, add_mailing, drain_work, statuses
from tests.waiting import eventually

MAILER = Path(sys.executable).with_name("mailer")


async def test_dispatches_and_stops_on_sigterm(
    engine: AsyncEngine, database_url: str, vhost_url: str, tmp_path: Path
) -> None:
    await add_clients(engine, ("900", ""), ("901", ""), ("902", ""))
    mailing_id = await add_mailing(engine)
    process = await asyncio.create_subprocess_exec(
        str(MAILER),
        "planner",
        cwd=tmp_path,  # no .env here
        env={
            "PATH": os.environ.get("PATH", ""),
            "MAILER_DATABASE_URL": database_url,
            "MAILER_RABBITMQ_URL": vhost_url,
            "MAILER_PLANNER_TICK_INTERVAL_S": "0.2",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        queued = await eventually(
            lambda: statuses(engine, mailing_id),
            lambda found: set(found.values()) == {MessageStatus.QUEUED},
            timeout_s=15,
        )
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()

    log = output.decode()
    assert process.returncode == 0, log
    assert '"event": "planner.started"' in log
    assert '"event": "planner.stopped"' in log
    assert sorted(work.message_id for work in await drain_work(vhost_url)) == sorted(queued)
