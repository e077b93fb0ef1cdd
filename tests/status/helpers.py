"""What the status tests seed, publish and read: rows by SQL, queues by AMQP, a cuttable link."""

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topology
from shared.broker import Publisher
from shared.messages import Result, ResultBatch
from shared.statuses import MailingStatus, MessageStatus
from tests.api.seed import insert_messages

SENT_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def publish(publisher: Publisher, *results: Result) -> None:
    await publisher.publish_many(
        topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, list(results)
    )


async def publish_batch(publisher: Publisher, *results: Result) -> None:
    """Results in one body, as a sender publishes them."""
    body = ResultBatch(results=list(results))
    await publisher.publish(topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, body)


def sent(message_id: int, attempts: int = 1) -> Result:
    return Result(
        message_id=message_id, status=MessageStatus.SENT, attempts=attempts, sent_at=SENT_AT
    )


def outcome(message_id: int, status: str, attempts: int = 1, error: str | None = None) -> Result:
    return Result.model_validate(
        {"message_id": message_id, "status": status, "attempts": attempts, "last_error": error}
    )


@dataclass(frozen=True)
class Row:
    status: str
    attempts: int
    last_error: str | None
    sent_at: Any


async def insert_mailing(
    engine: AsyncEngine, status: str = MailingStatus.RUNNING, *, materialized: bool = True
) -> int:
    """A mailing that started a minute ago and ends in an hour; its id."""
    async with engine.begin() as connection:
        mailing_id = await connection.scalar(
            text(
                "INSERT INTO mailings (start_at, end_at, text, status, materialized_at)"
                " VALUES (now() - interval '1 minute', now() + interval '1 hour', 'hello',"
                " :status, CASE WHEN :materialized THEN now() END) RETURNING id"
            ),
            {"status": str(status), "materialized": materialized},
        )
    return int(mailing_id)


async def queued_messages(engine: AsyncEngine, mailing_id: int, count: int) -> list[int]:
    """``count`` queued messages of the mailing, each for a new client; their ids."""
    return await insert_messages(engine, mailing_id, ["queued"] * count)


async def rows(engine: AsyncEngine, ids: Sequence[int]) -> dict[int, Row]:
    async with engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT id, status, attempts, last_error, sent_at FROM messages"
                " WHERE id = ANY(CAST(:ids AS bigint[]))"
            ),
            {"ids": list(ids)},
        )
        return {r.id: Row(r.status, r.attempts, r.last_error, r.sent_at) for r in found}


async def mailing_status(engine: AsyncEngine, mailing_id: int) -> str:
    async with engine.connect() as connection:
        status = await connection.scalar(
            text("SELECT status FROM mailings WHERE id = :id"), {"id": mailing_id}
        )
    return str(status)


async def publish_raw(connection: AbstractRobustConnection, exchange: str, body: bytes) -> None:
    """A body as it is, not through the schemas: what a buggy producer could send."""
    async with connection.channel(publisher_confirms=True) as channel:
        target = await channel.get_exchange(exchange, ensure=False)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await target.publish(message, routing_key=topology.RESULTS_ROUTING_KEY, mandatory=True)


async def ready_count(connection: AbstractRobustConnection, queue: str) -> int:
    """Messages waiting in ``queue``, not counting those delivered and still unacked."""
    async with connection.channel() as channel:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


async def take_all(connection: AbstractRobustConnection, queue: str) -> list[bytes]:
    """Every body waiting in ``queue``, removed from it."""
    bodies = []
    async with connection.channel() as channel:
        source = await channel.get_queue(queue, ensure=False)
        while (message := await source.get(no_ack=True, fail=False)) is not None:
            bodies.append(message.body)
    return bodies


class Link:
    """A TCP forwarder to PostgreSQL that a test can cut and restore, as a network would."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def open(self) -> None:
        """Listen (again, on the same port after a cut) and forward every connection."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while chunk := await reader.read(65_536):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()
