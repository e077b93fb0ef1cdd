"""Rows, work messages and results for the sender's tests, and a sender's configuration."""

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.sender.app import Running, SenderConfig, running
from services.sender.settings import SenderSettings
from shared import topology
from shared.broker import Publisher
from shared.messages import Result, ResultBatch, Work
from shared.settings import BrokerSettings, DatabaseSettings, HealthSettings, ProviderSettings
from shared.statuses import MessageStatus
from tests.provider_stub.helpers import TOKEN, Stub

_phones = itertools.count(1)
TEXT = 'Привет, "мир" \\ 😀\nline two'


def config(
    database_url: str,
    vhost_url: str,
    stub_url: str,
    health: HealthSettings | None = None,
    **sender: Any,
) -> SenderConfig:
    """A sender's settings from these values alone (no environment, no ``.env``); a health
    server only if ``health`` is given."""
    fast = {
        "sender_prefetch": 10,
        "sender_retry_base_s": 0.2,
        "sender_request_timeout_s": 5.0,
        "sender_stop_timeout_s": 5.0,
        **sender,
    }
    return SenderConfig(
        sender=SenderSettings(_env_file=None, **fast),
        provider=ProviderSettings(
            _env_file=None, MAILER_PROVIDER_TOKEN=TOKEN, provider_url=f"{stub_url}/v1"
        ),
        database=DatabaseSettings(_env_file=None, database_url=database_url),
        broker=BrokerSettings(_env_file=None, rabbitmq_url=SecretStr(vhost_url)),
        health=health,
    )


def seeded(seed: int) -> random.Random:
    """Jitter that repeats from run to run."""
    return random.Random(seed)  # noqa: S311 - jitter, not a secret


def in_seconds(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def insert_mailing(
    engine: AsyncEngine, *, end_at: datetime, status: str = "running", text_: str = TEXT
) -> int:
    async with engine.begin() as connection:
        mailing_id = await connection.scalar(
            text(
                "INSERT INTO mailings (start_at, end_at, text, status)"
                " VALUES (:start_at, :end_at, :text, :status) RETURNING id"
            ),
            {
                "start_at": end_at - timedelta(hours=1),
                "end_at": end_at,
                "text": text_,
                "status": status,
            },
        )
    return int(mailing_id)


async def queued_messages(engine: AsyncEngine, mailing_id: int, count: int = 1) -> list[Work]:
    """``count`` clients with a queued message each in the mailing, and their work messages."""
    phones = [f"7901{next(_phones):07d}" for _ in range(count)]
    async with engine.begin() as connection:
        clients = await connection.execute(
            text(
                "INSERT INTO clients (phone, operator_code)"
                " SELECT p, substr(p, 2, 3) FROM unnest(CAST(:phones AS text[])) AS p"
                " RETURNING id, phone"
            ),
            {"phones": phones},
        )
        phone_of = {row.id: row.phone for row in clients}
        messages = await connection.execute(
            text(
                "INSERT INTO messages (mailing_id, client_id, status)"
                " SELECT :mailing_id, c, 'queued' FROM unnest(CAST(:clients AS bigint[])) AS c"
                " RETURNING id, client_id"
            ),
            {"mailing_id": mailing_id, "clients": sorted(phone_of)},
        )
        found = sorted(messages.all())
        mailing = (
            await connection.execute(
                text("SELECT end_at, text FROM mailings WHERE id = :id"), {"id": mailing_id}
            )
        ).one()
    return [
        Work(
            message_id=message_id,
            mailing_id=mailing_id,
            client_id=client_id,
            phone=phone_of[client_id],
            text=mailing.text,
            deadline_at=mailing.end_at,
        )
        for message_id, client_id in found
    ]


class Results:
    """Every Result the senders publish, read from the results queue as the status service
    would (acked as read)."""

    def __init__(self) -> None:
        self.received: list[Result] = []
        self._arrived = asyncio.Event()

    async def listen(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        await topology.declare(channel)
        queue = await channel.get_queue(topology.RESULTS_QUEUE)
        await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            self.received.extend(ResultBatch.model_validate_json(message.body).results)
            self._arrived.set()

    def of(self, message_id: int) -> list[Result]:
        return [r for r in self.received if r.message_id == message_id]

    def final(self) -> dict[int, Result]:
        return {r.message_id: r for r in self.received if r.status != MessageStatus.QUEUED}

    async def wait_until(self, done: Callable[[], bool], timeout_s: float) -> None:
        """Until ``done()`` holds, for at most ``timeout_s``."""
        give_up_at = time.monotonic() + timeout_s
        while not done():
            left_s = give_up_at - time.monotonic()
            if left_s <= 0:
                raise AssertionError(f"not reached in {timeout_s} s; results: {self.received}")
            self._arrived.clear()
            try:
                async with asyncio.timeout(left_s):
                    await self._arrived.wait()
            except TimeoutError:
                pass


async def publish_raw(connection: AbstractRobustConnection, body: bytes) -> None:
    """A body as the planner would publish it, whatever it holds (for poison tests)."""
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(topology.WORK_EXCHANGE)
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await exchange.publish(message, topology.WORK_ROUTING_KEY, mandatory=True)
    await channel.close()


@dataclass
class Pipeline:
    """What an integration test drives: the database, the stub, the broker, the results."""

    engine: AsyncEngine
    stub: Stub
    connection: AbstractRobustConnection
    publisher: Publisher
    results: Results
    urls: tuple[str, str, str]  # database, vhost, stub

    def sender(
        self, health: HealthSettings | None = None, **settings: Any
    ) -> AbstractAsyncContextManager[Running]:
        """A sender running in-process until the block exits, with these settings."""
        return running(config(*self.urls, health, **settings))

    async def publish(self, *works: Work) -> None:
        """Work messages as the planner publishes them."""
        await self.publisher.publish_many(topology.WORK_EXCHANGE, topology.WORK_ROUTING_KEY, works)

    async def dead_letters(self, count: int, timeout_s: float = 10) -> list[bytes]:
        """The first ``count`` bodies dead-lettered from the work queue, waited for."""
        channel = await self.connection.channel()
        queue = await channel.get_queue(topology.WORK_DEAD_QUEUE)
        found: list[bytes] = []
        give_up_at = time.monotonic() + timeout_s
        # Read, not counted: a quorum queue's declare-ok message count lags behind.
        while len(found) < count and time.monotonic() < give_up_at:
            message = await queue.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                found.append(message.body)
        await channel.close()
        return found

    async def messages(self, count: int = 1, **mailing: Any) -> list[Work]:
        """A mailing ending in two minutes (unless ``mailing`` says otherwise) with ``count``
        queued messages."""
        mailing_id = await insert_mailing(self.engine, **{"end_at": in_seconds(120), **mailing})
        return await queued_messages(self.engine, mailing_id, count)
