"""Realistic demo clients: Russian mobile numbers, Russia's eleven time zones, a few tags."""

import random
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from services.stack import sql
from services.stack.errors import DemoFailed

# Russia's eleven zones, from UTC+2 to UTC+12, weighted roughly by where people live; every
# zone is used at least once whatever the weights.
TIME_ZONES: dict[str, int] = {
    "Europe/Kaliningrad": 1,
    "Europe/Moscow": 46,
    "Europe/Samara": 6,
    "Asia/Yekaterinburg": 13,
    "Asia/Omsk": 5,
    "Asia/Krasnoyarsk": 8,
    "Asia/Irkutsk": 5,
    "Asia/Yakutsk": 2,
    "Asia/Vladivostok": 4,
    "Asia/Magadan": 1,
    "Asia/Kamchatka": 1,
}
# Segments as a CRM would label them, by share of the base.
TAG_KINDS: dict[str, int] = {"regular": 10, "new": 4, "dormant": 3, "vip": 1}
OPERATOR_CODES = range(900, 1000)


@dataclass(frozen=True)
class DemoClient:
    """One row of the ``clients`` table, as COPY takes it."""

    phone: str
    operator_code: str
    tag: str
    timezone: str


def demo_tags(run_id: str) -> list[str]:
    """This run's tags: its clients and nobody else's, so the mailing reaches exactly them."""
    return [f"demo-{run_id}-{kind}" for kind in TAG_KINDS]


def demo_clients(count: int, run_id: str, rng: random.Random) -> list[DemoClient]:
    """``count`` clients with distinct numbers ``79XXXXXXXXX``, code = digits 2-4."""
    phones: dict[str, str] = {}
    while len(phones) < count:
        code = str(rng.choice(OPERATOR_CODES))
        phones.setdefault(f"7{code}{rng.randrange(10**7):07d}", code)
    zones = list(TIME_ZONES)
    drawn = rng.choices(zones, weights=list(TIME_ZONES.values()), k=count)
    # The first clients take one zone each, so that a small demo still covers all eleven.
    drawn[: len(zones)] = zones[:count]
    tags = rng.choices(demo_tags(run_id), weights=list(TAG_KINDS.values()), k=count)
    return [
        DemoClient(phone, code, tag, zone)
        for (phone, code), tag, zone in zip(phones.items(), tags, drawn, strict=True)
    ]


async def copy_clients(database_url: str, clients: Sequence[DemoClient]) -> int:
    """Insert ``clients`` by COPY; a phone already taken is skipped. How many were inserted."""
    url = make_url(database_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    records = [(c.phone, c.operator_code, c.tag, c.timezone) for c in clients]
    try:
        connection = await asyncpg.connect(dsn)
        try:
            async with connection.transaction():
                await connection.execute(sql.CREATE_STAGE)
                await connection.copy_records_to_table(
                    sql.STAGE_TABLE, records=records, columns=sql.STAGE_COLUMNS
                )
                status: str = await connection.execute(sql.INSERT_FROM_STAGE)
        finally:
            await connection.close()
    except (OSError, asyncpg.PostgresError) as exc:
        # No URL in the message: it may hold a password.
        raise DemoFailed(f"cannot seed clients into database {url.database!r}: {exc}") from exc
    return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"
