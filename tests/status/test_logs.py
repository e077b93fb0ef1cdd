"""The status service's log lines: events with ids and counts, never a body's phone or text."""

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topology
from shared.broker import Publisher
from shared.logs import configure_logging
from tests.status.conftest import StartStatus
from tests.status.helpers import (
    insert_mailing,
    outcome,
    publish,
    publish_raw,
    queued_messages,
    sent,
)
from tests.status.test_poison import NOT_JSON
from tests.waiting import eventually


@contextmanager
def _json_logs() -> Iterator[io.StringIO]:
    """Logging as ``mailer status`` sets it up, into a buffer; the previous set-up after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    saved_structlog = structlog.get_config() if structlog.is_configured() else None
    stream = io.StringIO()
    configure_logging(level="INFO", log_format="json", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        if saved_structlog is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**saved_structlog)


def _events(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [record for record in records if record["event"] == name]


async def test_log_lines_carry_counts_and_ids_and_no_body(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
) -> None:
    mailing_id = await insert_mailing(engine)
    [message_id] = await queued_messages(engine, mailing_id, 1)
    with _json_logs() as stream:
        service = await start_status()
        await publish_raw(amqp, topology.RESULTS_EXCHANGE, NOT_JSON)
        await publish(publisher, sent(message_id), outcome(message_id + 1, "failed"))
        await eventually(lambda: _settled(service), lambda settled: settled == 3)
        await eventually(lambda: _finished(stream), lambda finished: len(finished) == 1)
        await service.stop()

    written = _events(stream, "batch.written")
    assert sum(record["count"] for record in written) == 1
    assert all(record["duration_ms"] >= 0 for record in written)
    assert _events(stream, "mailing.finished")[0]["mailing_id"] == mailing_id
    rejected = _events(stream, "result.rejected")
    assert [(r["reason"], r.get("message_id")) for r in rejected] == [
        ("invalid body", None),
        ("unknown message", message_id + 1),
    ]
    assert {r["queue"] for r in rejected} == {topology.RESULTS_QUEUE}
    assert "79161234567" not in stream.getvalue()
    assert _events(stream, "status.stopped")[0]["acked"] == 1


async def _settled(service: Any) -> int:
    return int(service.counters.acked + service.counters.rejected)


async def _finished(stream: io.StringIO) -> list[dict[str, Any]]:
    return _events(stream, "mailing.finished")
