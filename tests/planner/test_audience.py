"""Starting mailings and materialising their audience (SPEC §2 filter, §5 invariant 3)."""

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.planner import audience, lifecycle
from services.planner.tick import tick
from shared.statuses import MailingStatus, MessageStatus
from tests.planner.helpers import (
    RecordingPublisher,
    add_clients,
    add_mailing,
    execute,
    mailing,
    messages,
    planner_of,
)
from tests.planner.helpers import audience as audience_of

# (operator code, tag): cases differ only in the letter case of a tag, or in one field.
PEOPLE = (
    ("900", "vip"),
    ("900", "VIP"),
    ("901", "vip"),
    ("901", ""),
    ("902", "news"),
    ("903", "vip "),
)


def matches(person: tuple[str, str], codes: list[str], tags: list[str]) -> bool:
    """SPEC §2, written out independently of the SQL."""
    code, tag = person
    return (not codes or code in codes) and (not tags or tag in tags)


FILTERS = {
    "empty filter: everyone": {},
    "codes only": {"operator_codes": ["900", "902"]},
    "tags only, exact case": {"tags": ["vip"]},
    "both": {"operator_codes": ["901"], "tags": ["vip", "news"]},
    "upper-case tag": {"tags": ["VIP"]},
    "the empty tag": {"tags": [""]},
}


@pytest.mark.parametrize("mailing_filter", FILTERS.values(), ids=FILTERS.keys())
async def test_the_audience_is_exactly_the_clients_the_filter_matches(
    engine: AsyncEngine, mailing_filter: dict[str, Any]
) -> None:
    client_ids = await add_clients(engine, *PEOPLE)
    mailing_id = await add_mailing(engine, **mailing_filter)

    await tick(planner_of(engine, RecordingPublisher()))

    codes, tags = mailing_filter.get("operator_codes", []), mailing_filter.get("tags", [])
    expected = [
        cid for cid, person in zip(client_ids, PEOPLE, strict=True) if matches(person, codes, tags)
    ]
    assert expected, "each case should match someone"
    assert await audience_of(engine, mailing_id) == expected


async def test_a_filter_matching_nobody_makes_no_messages_and_the_mailing_finishes(
    engine: AsyncEngine,
) -> None:
    await add_clients(engine, *PEOPLE)
    mailing_id = await add_mailing(engine, operator_codes=["999"], tags=["Vip"])
    publisher = RecordingPublisher()

    report = await tick(planner_of(engine, publisher))

    row = await mailing(engine, mailing_id)
    assert (row.status, row.materialized_at is not None) == (MailingStatus.FINISHED, True)
    assert await messages(engine, mailing_id) == []
    assert (report.started, report.finished, publisher.published) == (1, 1, [])


async def test_clients_created_after_the_start_are_not_in_the_audience(engine: AsyncEngine) -> None:
    before = await add_clients(engine, ("900", ""), ("900", ""))
    mailing_id = await add_mailing(engine)
    assert await lifecycle.start_due(engine) == [mailing_id]
    await add_clients(engine, ("900", ""))

    await tick(planner_of(engine, RecordingPublisher()))

    row = await mailing(engine, mailing_id)
    assert row.audience_until_client_id == before[-1]
    assert await audience_of(engine, mailing_id) == before


async def test_a_mailing_starting_later_is_left_alone(engine: AsyncEngine) -> None:
    await add_clients(engine, ("900", ""))
    mailing_id = await add_mailing(engine, start_in_s=3600, end_in_s=7200)

    report = await tick(planner_of(engine, RecordingPublisher()))

    assert (await mailing(engine, mailing_id)).status == MailingStatus.SCHEDULED
    assert (report.started, await messages(engine, mailing_id)) == (0, [])


async def test_starting_with_no_clients_fixes_an_empty_audience(engine: AsyncEngine) -> None:
    mailing_id = await add_mailing(engine)

    await tick(planner_of(engine, RecordingPublisher()))
    await add_clients(engine, ("900", ""))
    await tick(planner_of(engine, RecordingPublisher()))

    row = await mailing(engine, mailing_id)
    assert (row.status, row.audience_until_client_id) == (MailingStatus.FINISHED, 0)
    assert await messages(engine, mailing_id) == []


async def test_small_chunks_make_the_same_audience(engine: AsyncEngine) -> None:
    people = [PEOPLE[n % len(PEOPLE)] for n in range(40)]
    client_ids = await add_clients(engine, *people)
    mailing_id = await add_mailing(engine, tags=["vip", "news"])
    planner = planner_of(
        engine, RecordingPublisher(), planner_audience_chunk_size=3, planner_batches_per_tick=100
    )

    report = await tick(planner)

    expected = [
        c for c, p in zip(client_ids, people, strict=True) if matches(p, [], ["vip", "news"])
    ]
    assert await audience_of(engine, mailing_id) == expected
    assert report.materialised == len(expected)
    assert (await mailing(engine, mailing_id)).materialized_at is not None


async def test_materialising_resumes_after_the_last_chunk_done(engine: AsyncEngine) -> None:
    client_ids = await add_clients(engine, *[("900", "")] * 25)
    mailing_id = await add_mailing(engine)
    await lifecycle.start_due(engine)

    # One chunk, then the planner "dies"; another one picks up from the stored progress.
    chunk = await audience.materialise_chunk(engine, mailing_id, chunk_size=10)
    row = await mailing(engine, mailing_id)
    assert (chunk.inserted, chunk.more, chunk.total) == (10, True, None)
    assert (row.audience_done_client_id, row.materialized_at) == (client_ids[9], None)
    assert await audience_of(engine, mailing_id) == client_ids[:10]

    await tick(planner_of(engine, RecordingPublisher(), planner_audience_chunk_size=10))

    assert await audience_of(engine, mailing_id) == client_ids
    assert (await mailing(engine, mailing_id)).audience_done_client_id == client_ids[-1]


async def test_rescanning_clients_already_done_adds_no_duplicates(engine: AsyncEngine) -> None:
    client_ids = await add_clients(engine, *[("900", "")] * 12)
    mailing_id = await add_mailing(engine)
    await lifecycle.start_due(engine)
    await audience.materialise_chunk(engine, mailing_id, chunk_size=8)
    # As if the progress had been lost: the same clients are scanned again.
    await execute(
        engine, "UPDATE mailings SET audience_done_client_id = 0 WHERE id = :id", id=mailing_id
    )

    chunk = await audience.materialise_chunk(engine, mailing_id, chunk_size=100)

    assert (chunk.inserted, chunk.total) == (4, 12)
    assert await audience_of(engine, mailing_id) == client_ids


async def test_a_tick_does_a_bounded_number_of_chunks_and_says_more_is_left(
    engine: AsyncEngine,
) -> None:
    await add_clients(engine, *[("900", "")] * 30)
    mailing_id = await add_mailing(engine)
    planner = planner_of(
        engine, RecordingPublisher(), planner_audience_chunk_size=5, planner_batches_per_tick=2
    )

    first = await tick(planner)
    assert (first.materialised, first.more_work) == (10, True)
    reports = [await tick(planner) for _ in range(2)]

    assert [(r.materialised, r.more_work) for r in reports] == [(10, True), (10, False)]
    assert len(await audience_of(engine, mailing_id)) == 30


async def test_a_mailing_started_after_its_end_shows_its_audience_as_expired(
    engine: AsyncEngine,
) -> None:
    await add_clients(engine, *[("900", "")] * 3)
    mailing_id = await add_mailing(engine, start_in_s=-7200, end_in_s=-3600)
    publisher = RecordingPublisher()

    await tick(planner_of(engine, publisher))

    row = await mailing(engine, mailing_id)
    assert (row.status, row.expired, row.pending + row.queued) == (MailingStatus.FINISHED, 3, 0)
    assert {m.status for m in await messages(engine, mailing_id)} == {MessageStatus.EXPIRED}
    assert publisher.published == []


async def test_a_cancelled_mailing_gets_no_more_messages(engine: AsyncEngine) -> None:
    await add_clients(engine, *[("900", "")] * 10)
    mailing_id = await add_mailing(engine)
    await lifecycle.start_due(engine)
    await audience.materialise_chunk(engine, mailing_id, chunk_size=4)
    await execute(engine, "UPDATE mailings SET status = 'cancelled' WHERE id = :id", id=mailing_id)

    report = await tick(planner_of(engine, RecordingPublisher()))

    assert report.materialised == 0
    assert len(await messages(engine, mailing_id)) == 4
    assert (await mailing(engine, mailing_id)).status == MailingStatus.CANCELLED
