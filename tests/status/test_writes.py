"""Results through the real RabbitMQ into the real PostgreSQL: what the table ends up saying."""

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.status.service import StatusService
from shared import topology
from shared.broker import Publisher
from shared.messages import Result
from tests.status.conftest import StartStatus
from tests.status.helpers import (
    SENT_AT,
    Row,
    insert_mailing,
    mailing_status,
    outcome,
    publish,
    queued_messages,
    ready_count,
    rows,
    sent,
)
from tests.waiting import eventually


def _expected(index: int, message_id: int) -> tuple[Result, Row]:
    """A mix of outcomes and progress reports, and the row each should leave."""
    match index % 4:
        case 0:
            return sent(message_id, 2), Row("sent", 2, None, SENT_AT)
        case 1:
            return outcome(message_id, "failed", 3, "400"), Row("failed", 3, "400", None)
        case 2:
            return outcome(message_id, "expired", 1, "deadline"), Row(
                "expired", 1, "deadline", None
            )
        case _:
            return outcome(message_id, "queued", 4, "503"), Row("queued", 4, "503", None)


async def test_a_thousand_results_are_written_in_batches_and_all_acked(
    engine: AsyncEngine,
    start_status: StartStatus,
    publisher: Publisher,
    amqp: AbstractRobustConnection,
) -> None:
    mailing_id = await insert_mailing(engine)
    ids = await queued_messages(engine, mailing_id, 1_000)
    results, expected = zip(*(_expected(i, m) for i, m in enumerate(ids)), strict=True)
    service = await start_status()

    await publish(publisher, *results)

    wanted = dict(zip(ids, expected, strict=True))
    await eventually(lambda: _differing(engine, wanted), lambda differing: differing == 0)
    await service.stop()
    assert await ready_count(amqp, topology.RESULTS_QUEUE) == 0  # none left unacked either
    assert service.counters.acked == 1_000
    assert service.counters.batches <= 100, "results were written one by one"
    assert await mailing_status(engine, mailing_id) == "running"  # a quarter is still queued


async def test_a_final_status_never_changes(
    engine: AsyncEngine, start_status: StartStatus, publisher: Publisher
) -> None:
    ids = await queued_messages(engine, await insert_mailing(engine), 2)
    service = await start_status()
    await publish(publisher, sent(ids[0]), outcome(ids[1], "failed", 1, "400"))
    before = await eventually(
        lambda: rows(engine, ids),
        lambda found: [found[i].status for i in ids] == ["sent", "failed"],
    )

    await publish(
        publisher,
        outcome(ids[0], "failed", 2, "late failure"),
        outcome(ids[0], "queued", 5, "503"),
        outcome(ids[1], "expired", 3, "deadline"),
        outcome(ids[1], "queued", 6, "timeout"),
    )

    await eventually(lambda: _acked(service), lambda acked: acked == 6)
    assert await rows(engine, ids) == before
    assert before[ids[0]] == Row("sent", 1, None, SENT_AT)


async def test_results_of_one_message_in_one_batch_are_merged(
    engine: AsyncEngine, start_status: StartStatus, publisher: Publisher
) -> None:
    [message_id] = await queued_messages(engine, await insert_mailing(engine), 1)
    # Four deliveries fill the batch; the long interval keeps them together until then.
    service = await start_status(status_batch_size=4, status_flush_interval_ms=10_000)

    await publish(
        publisher,
        outcome(message_id, "queued", 1, "503"),
        outcome(message_id, "queued", 2, "timeout"),
        sent(message_id, 3),
        outcome(message_id, "failed", 4, "late"),
    )

    await eventually(lambda: _acked(service), lambda acked: acked == 4)
    assert service.counters.batches == 1
    assert await rows(engine, [message_id]) == {message_id: Row("sent", 4, "late", SENT_AT)}


async def test_a_mailing_finishes_when_its_last_message_is_final_and_it_is_materialised(
    engine: AsyncEngine, start_status: StartStatus, publisher: Publisher
) -> None:
    finishing = await insert_mailing(engine)
    unmaterialised = await insert_mailing(engine, materialized=False)
    cancelled = await insert_mailing(engine, "cancelled")
    first, last = await queued_messages(engine, finishing, 2)
    [lonely] = await queued_messages(engine, unmaterialised, 1)
    [other] = await queued_messages(engine, cancelled, 1)
    service = await start_status()

    await publish(publisher, sent(first), outcome(last, "queued", 1, "503"), sent(lonely))
    await eventually(lambda: _acked(service), lambda acked: acked == 3)
    assert await mailing_status(engine, finishing) == "running"

    await publish(publisher, outcome(other, "failed", 1, "400"), outcome(last, "expired", 2))
    await eventually(lambda: mailing_status(engine, finishing), lambda s: s == "finished")
    assert await mailing_status(engine, unmaterialised) == "running"
    assert await mailing_status(engine, cancelled) == "cancelled"

    # Once the planner has materialised it, the next result that touches it finishes it.
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE mailings SET materialized_at = now() WHERE id = :id"),
            {"id": unmaterialised},
        )
    await publish(publisher, sent(lonely))
    await eventually(lambda: mailing_status(engine, unmaterialised), lambda s: s == "finished")


async def _differing(engine: AsyncEngine, wanted: dict[int, Row]) -> int:
    """How many messages do not (yet) hold the row wanted for them."""
    found = await rows(engine, list(wanted))
    return sum(found.get(message_id) != row for message_id, row in wanted.items())


async def _acked(service: StatusService) -> int:
    return service.counters.acked


async def test_a_message_goes_back_to_pending_only_from_the_dispatch_its_sender_named(
    engine: AsyncEngine, start_status: StartStatus, publisher: Publisher
) -> None:
    """A sender found the window closed; a late copy of its report must not undo a later
    dispatch, or a second work message for it would be in the broker."""
    current, stale, final = await queued_messages(engine, await insert_mailing(engine), 3)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE messages SET dispatches = 2 WHERE id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": [current, stale, final]},
        )
    await start_status()

    back = {"status": "pending", "attempts": 1, "last_error": None}
    await publish(
        publisher,
        Result.model_validate({"message_id": current, "dispatch": 2, **back}),
        Result.model_validate({"message_id": stale, "dispatch": 1, **back}),
        sent(final),
        Result.model_validate({"message_id": final, "dispatch": 2, **back}),
    )

    found = await eventually(
        lambda: rows(engine, [current, stale, final]),
        lambda found: found[current].status == "pending" and found[final].status == "sent",
    )
    assert found[stale].status == "queued"


async def test_a_message_put_back_waits_in_its_clients_zone_which_is_made_due(
    engine: AsyncEngine, start_status: StartStatus, publisher: Publisher
) -> None:
    """The client moved to Tokyo while its message was queued; Berlin's zone sleeps until its
    window closes. The message must wait for Tokyo's window, and Tokyo be looked at now."""
    mailing_id = await insert_mailing(engine)
    (message_id,) = await queued_messages(engine, mailing_id, 1)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE messages SET timezone = 'Europe/Berlin', dispatches = 1 WHERE id = :id"),
            {"id": message_id},
        )
        await connection.execute(
            text(
                "UPDATE clients SET timezone = 'Asia/Tokyo'"
                " WHERE id = (SELECT client_id FROM messages WHERE id = :id)"
            ),
            {"id": message_id},
        )
        await connection.execute(
            text(
                "INSERT INTO mailing_zones (mailing_id, timezone, wake_at) VALUES"
                " (:m, 'Europe/Berlin', now() + interval '5 hours'),"
                " (:m, 'Asia/Tokyo', now() + interval '20 hours')"
            ),
            {"m": mailing_id},
        )
    await start_status()

    back = {"message_id": message_id, "status": "pending", "attempts": 0, "dispatch": 1}
    await publish(publisher, Result.model_validate(back))

    found = await eventually(
        lambda: _zones_of(engine, mailing_id, message_id),
        lambda found: found[0] == "pending",
    )
    _, timezone, due = found
    assert timezone == "Asia/Tokyo"
    assert due == {"Europe/Berlin": False, "Asia/Tokyo": True}


async def _zones_of(
    engine: AsyncEngine, mailing_id: int, message_id: int
) -> tuple[str, str, dict[str, bool]]:
    """The message's status and zone, and which of the mailing's zones are due now."""
    async with engine.connect() as connection:
        message = (
            await connection.execute(
                text("SELECT status, timezone FROM messages WHERE id = :id"), {"id": message_id}
            )
        ).one()
        zones = await connection.execute(
            text(
                "SELECT timezone, wake_at <= now() AS due FROM mailing_zones WHERE mailing_id = :m"
            ),
            {"m": mailing_id},
        )
        return message.status, message.timezone, {row.timezone: row.due for row in zones}
