"""What the planner tests build and read: clients, mailings, messages, work, fake publishers."""

import asyncio
import itertools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aio_pika
from pydantic import BaseModel
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.planner.dispatch import WorkPublisher
from services.planner.settings import PlannerSettings
from services.planner.tick import Planner, tick
from shared import topology
from shared.broker import BrokerError
from shared.messages import Work

T = TypeVar("T")

_phones = itertools.count()


def settings(**fields: Any) -> PlannerSettings:
    """Planner settings from these values and the defaults; no ``.env`` is read."""
    return PlannerSettings(_env_file=None, **fields)


def planner_of(engine: AsyncEngine, publisher: WorkPublisher, **fields: Any) -> Planner:
    return Planner(engine, publisher, settings(**fields))


async def add_clients(engine: AsyncEngine, *people: tuple[str, str]) -> list[int]:
    """One client per ``(operator_code, tag)``, with distinct phones; their ids, in order."""
    codes = [code for code, _ in people]
    tags = [tag for _, tag in people]
    phones = [f"7{code}{next(_phones):07d}" for code in codes]
    async with engine.begin() as connection:
        rows = await connection.execute(
            text(
                "INSERT INTO clients (phone, operator_code, tag)"
                " SELECT p, c, g FROM unnest(CAST(:phones AS text[]), CAST(:codes AS text[]),"
                " CAST(:tags AS text[])) WITH ORDINALITY AS t(p, c, g, n) ORDER BY n"
                " RETURNING id"
            ),
            {"phones": phones, "codes": codes, "tags": tags},
        )
        return sorted(row.id for row in rows)


async def add_mailing(
    engine: AsyncEngine,
    *,
    start_in_s: float = -1.0,
    end_in_s: float = 3600.0,
    operator_codes: Sequence[str] = (),
    tags: Sequence[str] = (),
    message_text: str = 'Hello, "friend" \\ 👋\nbye',
) -> int:
    """A scheduled mailing whose start and end are this many seconds from now."""
    async with engine.begin() as connection:
        mailing_id = await connection.scalar(
            text(
                "INSERT INTO mailings (start_at, end_at, text, operator_codes, tags)"
                " VALUES (now() + make_interval(secs => :start_s),"
                " now() + make_interval(secs => :end_s), :text, :codes, :tags) RETURNING id"
            ),
            {
                "start_s": start_in_s,
                "end_s": end_in_s,
                "text": message_text,
                "codes": list(operator_codes),
                "tags": list(tags),
            },
        )
    assert isinstance(mailing_id, int)
    return mailing_id


async def execute(engine: AsyncEngine, statement: str, **params: Any) -> None:
    """Run one statement of the test's own in a transaction of its own."""
    async with engine.begin() as connection:
        await connection.execute(text(statement), params)


async def mailing(engine: AsyncEngine, mailing_id: int) -> Row[Any]:
    """The mailing's row, with its counters as ``pending``, ``queued``, ..."""
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT * FROM mailings JOIN mailing_counts ON mailing_id = id WHERE id = :id"
                ),
                {"id": mailing_id},
            )
        ).one()


async def messages(engine: AsyncEngine, mailing_id: int) -> list[Row[Any]]:
    """The mailing's messages in id order."""
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT * FROM messages WHERE mailing_id = :id ORDER BY id"), {"id": mailing_id}
        )
        return list(result.all())


async def audience(engine: AsyncEngine, mailing_id: int) -> list[int]:
    """The client ids the mailing has messages for, in order."""
    return sorted(row.client_id for row in await messages(engine, mailing_id))


async def statuses(engine: AsyncEngine, mailing_id: int) -> dict[int, str]:
    """``{message id: status}`` of the mailing."""
    return {row.id: row.status for row in await messages(engine, mailing_id)}


class RecordingPublisher:
    """A publisher in memory: keeps what it confirms, refuses what ``refuse`` picks."""

    def __init__(self, refuse: Callable[[Work], bool] = lambda _work: False) -> None:
        self.published: list[Work] = []
        self.waiting = 0
        """Work in the queue besides what was published here (see :meth:`ready_count`)."""
        self._taken = 0
        self._refuse = refuse

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: BaseModel,
        headers: dict[str, Any] | None = None,
    ) -> None:
        assert (exchange, routing_key) == (topology.WORK_EXCHANGE, topology.WORK_ROUTING_KEY)
        assert isinstance(body, Work)
        await asyncio.sleep(0)  # let other publishes interleave, as real confirms do
        if self._refuse(body):
            raise BrokerError("publish to mailer.work not confirmed: test refusal")
        self.published.append(body)

    async def ready_count(self, queue: str) -> int:
        """``waiting``, plus what was published here since the senders last took it all."""
        assert queue == topology.WORK_QUEUE
        return self.waiting + len(self.published) - self._taken

    def senders_take_all(self) -> None:
        """The senders catch up: what was published here no longer waits."""
        self._taken = len(self.published)

    @property
    def ids(self) -> list[int]:
        return [work.message_id for work in self.published]


async def drain_work(url: str) -> list[Work]:
    """Every message in the work queue of the vhost at ``url``, taken off it."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await topology.declare(channel)
        queue = await channel.get_queue(topology.WORK_QUEUE)
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append(Work.model_validate_json(message.body))
        return found


async def mailings_by_tick(
    planner: Planner, publisher: RecordingPublisher, ticks: int
) -> list[set[int]]:
    """Tick ``ticks`` times, the senders taking all the work after each; the mailings each tick
    published work of."""
    found = []
    for _ in range(ticks):
        before = len(publisher.published)
        await tick(planner)
        found.append({work.mailing_id for work in publisher.published[before:]})
        publisher.senders_take_all()
    return found
