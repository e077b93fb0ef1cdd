"""Starting, expiring, cancelling orphans and finishing (SPEC §2 life cycles, §5 invariant 4)."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from services.planner import lifecycle
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


async def running_mailing(
    engine: AsyncEngine, statuses: Sequence[str], *, end_in_s: float = 3600.0
) -> int:
    """A running, materialised mailing with one message per status, for clients of its own."""
    client_ids = await add_clients(engine, *[("900", "")] * len(statuses))
    mailing_id = await add_mailing(engine, start_in_s=-7200, end_in_s=end_in_s)
    await execute(
        engine,
        "UPDATE mailings SET status = 'running', materialized_at = now(),"
        " audience_until_client_id = :last, audience_done_client_id = :last WHERE id = :id",
        id=mailing_id,
        last=client_ids[-1] if client_ids else 0,
    )
    await execute(
        engine,
        "INSERT INTO messages (mailing_id, client_id, status, last_error)"
        " SELECT :id, c, s, CASE WHEN s = 'queued' THEN 'HTTP 503' END"
        " FROM unnest(CAST(:clients AS bigint[]), CAST(:statuses AS text[])) AS t(c, s)",
        id=mailing_id,
        clients=client_ids,
        statuses=list(statuses),
    )
    return mailing_id


async def by_status(engine: AsyncEngine, mailing_id: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for message in await messages(engine, mailing_id):
        found[message.status] = found.get(message.status, 0) + 1
    return found


async def test_starting_fixes_the_audience_at_the_highest_client_id(engine: AsyncEngine) -> None:
    client_ids = await add_clients(engine, ("900", ""), ("901", ""))
    due = await add_mailing(engine)
    later = await add_mailing(engine, start_in_s=60, end_in_s=120)

    assert await lifecycle.start_due(engine) == [due]
    assert await lifecycle.start_due(engine) == []

    row = await mailing(engine, due)
    assert (row.status, row.audience_until_client_id) == (MailingStatus.RUNNING, client_ids[-1])
    assert (row.audience_done_client_id, row.materialized_at) == (0, None)
    assert (await mailing(engine, later)).status == MailingStatus.SCHEDULED


async def test_past_the_deadline_pending_messages_expire_at_once(engine: AsyncEngine) -> None:
    mailing_id = await running_mailing(engine, ["pending", "pending", "sent"], end_in_s=-1)

    report = await tick(planner_of(engine, RecordingPublisher()))

    stored = await messages(engine, mailing_id)
    assert [m.status for m in stored] == ["expired", "expired", "sent"]
    assert [m.last_error for m in stored] == ["deadline passed", "deadline passed", None]
    assert (report.expired, report.finished) == (2, 1)
    assert (await mailing(engine, mailing_id)).status == MailingStatus.FINISHED


async def test_queued_messages_get_a_grace_for_the_senders_to_report(engine: AsyncEngine) -> None:
    mailing_id = await running_mailing(engine, ["queued", "sent"], end_in_s=-5)
    planner = planner_of(engine, RecordingPublisher(), planner_queued_grace_s=15)

    await tick(planner)
    assert await by_status(engine, mailing_id) == {"queued": 1, "sent": 1}
    assert (await mailing(engine, mailing_id)).status == MailingStatus.RUNNING

    await execute(
        engine,
        "UPDATE mailings SET end_at = now() - interval '16 seconds' WHERE id = :id",
        id=mailing_id,
    )
    await tick(planner)

    expired = [m for m in await messages(engine, mailing_id) if m.status == "expired"]
    # The sender's last error says more than "deadline passed": it is kept.
    assert [m.last_error for m in expired] == ["HTTP 503"]
    assert (await mailing(engine, mailing_id)).status == MailingStatus.FINISHED


async def test_a_queued_message_without_an_error_says_the_deadline_passed(
    engine: AsyncEngine,
) -> None:
    mailing_id = await running_mailing(engine, ["queued"], end_in_s=-1)
    await execute(
        engine, "UPDATE messages SET last_error = NULL WHERE mailing_id = :id", id=mailing_id
    )

    await tick(planner_of(engine, RecordingPublisher(), planner_queued_grace_s=0))

    [message] = await messages(engine, mailing_id)
    assert (message.status, message.last_error) == ("expired", "deadline passed")


async def test_expiry_is_bounded_per_statement_and_finishes_over_ticks(engine: AsyncEngine) -> None:
    mailing_id = await running_mailing(engine, ["pending"] * 7, end_in_s=-1)
    planner = planner_of(
        engine, RecordingPublisher(), planner_dispatch_batch_size=2, planner_batches_per_tick=2
    )

    reports = [await tick(planner) for _ in range(2)]

    assert [(r.expired, r.more_work) for r in reports] == [(4, True), (3, False)]
    assert await by_status(engine, mailing_id) == {"expired": 7}


async def test_a_mailing_finishes_only_when_materialised_and_nothing_is_unsent(
    engine: AsyncEngine,
) -> None:
    done = await running_mailing(engine, ["sent", "failed", "expired", "cancelled"])
    waiting = await running_mailing(engine, ["sent", "queued"])
    unmaterialised = await running_mailing(engine, ["sent"])
    await execute(
        engine, "UPDATE mailings SET materialized_at = NULL WHERE id = :id", id=unmaterialised
    )

    assert await lifecycle.finish(engine) == [done]

    assert (await mailing(engine, waiting)).status == MailingStatus.RUNNING
    assert (await mailing(engine, unmaterialised)).status == MailingStatus.RUNNING


async def test_a_cancelled_mailing_stays_cancelled(engine: AsyncEngine) -> None:
    mailing_id = await running_mailing(engine, ["sent", "cancelled"], end_in_s=-60)
    await execute(engine, "UPDATE mailings SET status = 'cancelled' WHERE id = :id", id=mailing_id)

    report = await tick(planner_of(engine, RecordingPublisher(), planner_queued_grace_s=0))

    assert (report.finished, report.expired) == (0, 0)
    assert (await mailing(engine, mailing_id)).status == MailingStatus.CANCELLED
    assert await by_status(engine, mailing_id) == {"sent": 1, "cancelled": 1}


async def test_queued_messages_of_a_cancelled_mailing_are_settled_after_the_grace(
    engine: AsyncEngine,
) -> None:
    # The API cancels only pending messages; queued ones are the senders' to report. With no
    # sender to do it, the planner settles them once the grace has passed since the cancel.
    mailing_id = await running_mailing(engine, ["queued", "sent"])
    await execute(engine, "UPDATE mailings SET status = 'cancelled' WHERE id = :id", id=mailing_id)
    planner = planner_of(engine, RecordingPublisher(), planner_queued_grace_s=15)

    await tick(planner)
    assert await by_status(engine, mailing_id) == {"queued": 1, "sent": 1}

    for table, key in (("mailings", "id"), ("messages", "mailing_id")):
        await execute(
            engine,
            f"UPDATE {table} SET updated_at = now() - interval '16 seconds' WHERE {key} = :id",
            id=mailing_id,
        )
    await tick(planner)

    assert await by_status(engine, mailing_id) == {"cancelled": 1, "sent": 1}
    assert (await mailing(engine, mailing_id)).status == MailingStatus.CANCELLED


async def test_a_pending_message_whose_client_was_deleted_is_cancelled(
    engine: AsyncEngine,
) -> None:
    mailing_id = await running_mailing(engine, ["pending", "pending"])
    [gone, kept] = await messages(engine, mailing_id)
    # What a client deleted while its message was being inserted leaves behind.
    await execute(engine, "DELETE FROM clients WHERE id = :id", id=gone.client_id)
    publisher = RecordingPublisher()

    report = await tick(planner_of(engine, publisher))

    assert report.cancelled == 1
    assert publisher.ids == [kept.id]
    assert await by_status(engine, mailing_id) == {"cancelled": 1, "queued": 1}
    assert {m.id: m.status for m in await messages(engine, mailing_id)}[gone.id] == (
        MessageStatus.CANCELLED
    )


async def test_each_step_of_a_mailing_is_logged_with_its_id(engine: AsyncEngine) -> None:
    await add_clients(engine, ("900", ""), ("900", ""))
    mailing_id = await add_mailing(engine)
    planner = planner_of(engine, RecordingPublisher())

    with capture_logs(processors=[merge_contextvars]) as logs:
        await tick(planner)
        await execute(
            engine,
            "UPDATE mailings SET end_at = now() - interval '1 second' WHERE id = :id",
            id=mailing_id,
        )
        await tick(planner_of(engine, RecordingPublisher(), planner_queued_grace_s=0))

    events = {
        entry["event"]: entry
        for entry in logs
        if entry.get("mailing_id") == mailing_id and entry["log_level"] != "debug"
    }
    assert list(events) == [
        "mailing.started",
        "audience.materialised",
        "dispatch.batch",
        "messages.expired",
        "mailing.finished",
    ]
    assert events["audience.materialised"]["count"] == events["dispatch.batch"]["count"] == 2
    assert events["messages.expired"]["count"] == events["mailing.finished"]["expired"] == 2
    assert all(
        isinstance(events[e]["duration_ms"], int)
        for e in ("audience.materialised", "dispatch.batch")
    )
