"""The demo's clients: realistic, distinct, and loaded by COPY."""

import random
import re
from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.stack.seed import TIME_ZONES, copy_clients, demo_clients, demo_tags


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - test data, repeatable on purpose


def test_numbers_are_russian_mobiles_whose_code_is_digits_two_to_four() -> None:
    clients = demo_clients(5_000, "abc123", seeded(1))

    assert len({client.phone for client in clients}) == 5_000
    for client in clients:
        assert re.fullmatch(r"79\d{9}", client.phone), client.phone
        assert client.operator_code == client.phone[1:4]
        assert 900 <= int(client.operator_code) <= 999
    assert len({client.operator_code for client in clients}) == 100


def test_every_zone_of_russia_is_used_even_by_a_small_demo() -> None:
    assert len(TIME_ZONES) == 11
    for count in (11, 1_000):
        zones = Counter(client.timezone for client in demo_clients(count, "r", seeded(2)))
        assert set(zones) == set(TIME_ZONES)
    few = demo_clients(3, "r", seeded(3))
    assert len({client.timezone for client in few}) == 3


def test_tags_belong_to_the_run() -> None:
    clients = demo_clients(1_000, "ab12cd", seeded(4))

    tags = Counter(client.tag for client in clients)
    assert set(tags) == set(demo_tags("ab12cd"))
    assert all(tag.startswith("demo-ab12cd-") and len(tag) <= 64 for tag in tags)
    assert tags["demo-ab12cd-regular"] > tags["demo-ab12cd-vip"]


async def test_copy_inserts_the_clients_and_skips_phones_already_taken(
    engine: AsyncEngine, database_url: str
) -> None:
    first = demo_clients(300, "one", seeded(5))
    assert await copy_clients(database_url, first) == 300

    again = [*first[:100], *demo_clients(50, "two", seeded(6))]
    inserted = await copy_clients(database_url, again)

    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT phone, tag, timezone FROM clients"))).all()
    assert inserted == len({c.phone for c in again} - {c.phone for c in first})
    assert len(stored) == 300 + inserted
    assert {row.phone for row in stored} >= {client.phone for client in first}
