"""The status service's SQL: one locked, set-based write per batch, and finishing mailings."""

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.status.merge import Columns
from shared.statuses import MESSAGE_FINAL, MailingStatus, MessageStatus
from shared.zone_wakes import wake_zones

_FINAL = ", ".join(f"'{status.value}'" for status in sorted(MESSAGE_FINAL))

# Rows are locked in id order before the update: an UPDATE alone locks them in whatever order
# its plan reads them, and two batches (or a cancel, or the planner) locking overlapping rows
# in different orders would deadlock. Final rows are locked too: the lock also says which ids
# exist at all.
_LOCK = text(
    "SELECT id, mailing_id FROM messages WHERE id = ANY(CAST(:ids AS bigint[]))"
    " ORDER BY id FOR UPDATE"
)

# A final status never changes (the WHERE); a progress report (queued) only moves attempts and
# last_error, and never moves a message back to queued; sent_at falls back to the write time
# for a sender that gave none, since a sent message must say when. A message goes back to
# pending (its send window closed before the call) only from the dispatch the sender named: a
# copy of that report delivered again after the planner queued the message anew must not
# leave a second work message for it in the broker.
_UPDATE = text(
    f"""
    UPDATE messages AS m SET
        status = CASE
            WHEN v.status IN ({_FINAL}) THEN v.status
            WHEN v.status = '{MessageStatus.PENDING.value}'
                 AND m.status = '{MessageStatus.QUEUED.value}' AND m.dispatches = v.dispatch
                THEN v.status
            ELSE m.status END,
        attempts = GREATEST(m.attempts, v.attempts),
        last_error = COALESCE(v.last_error, m.last_error),
        sent_at = CASE WHEN v.status = '{MessageStatus.SENT.value}'
                       THEN COALESCE(v.sent_at, now()) ELSE m.sent_at END,
        updated_at = now()
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:attempts AS integer[]),
        CAST(:errors AS text[]), CAST(:sent_ats AS timestamptz[]),
        CAST(:dispatches AS integer[])
    ) AS v(id, status, attempts, last_error, sent_at, dispatch)
    WHERE m.id = v.id AND m.status NOT IN ({_FINAL})
    """  # noqa: S608 -- built from the status enum, not from input
)

# Messages of this batch back to pending (their send window closed before the call) wait in
# their client's zone as it is now, which may have changed while they were queued; that zone
# is then woken (shared.zone_wakes). Only the zone column changes, so no counter moves.
_REZONE_PUT_BACK = text(
    f"""
    UPDATE messages AS m SET timezone = c.timezone
    FROM clients AS c
    WHERE m.id = ANY(CAST(:ids AS bigint[])) AND c.id = m.client_id
      AND m.status = '{MessageStatus.PENDING.value}' AND m.timezone IS NOT NULL
    RETURNING m.mailing_id, m.timezone
    """  # noqa: S608 -- built from the status enum, not from input
)

# Mailings are locked in id order for the same reason as messages. The counters are read
# after the batch committed, so they include it.
_FINISH = text(
    f"""
    WITH done AS (
        SELECT g.id FROM mailings AS g JOIN mailing_counts AS c ON c.mailing_id = g.id
        WHERE g.id = ANY(CAST(:ids AS bigint[]))
          AND g.status = '{MailingStatus.RUNNING.value}'
          AND g.materialized_at IS NOT NULL
          AND c.pending + c.queued = 0
        ORDER BY g.id FOR UPDATE OF g
    )
    UPDATE mailings AS g SET status = '{MailingStatus.FINISHED.value}', updated_at = now()
    FROM done WHERE g.id = done.id AND g.status = '{MailingStatus.RUNNING.value}'
    RETURNING g.id
    """  # noqa: S608 -- built from the status enums, not from input
)


@dataclass(frozen=True)
class Written:
    """What one batch write found and did."""

    known_ids: frozenset[int]
    """Ids of the batch that exist in ``messages`` (written or already final)."""
    mailing_ids: frozenset[int]
    """The mailings those messages belong to."""
    updated: int
    """Rows changed: the rest were final already."""


async def write_results(connection: AsyncConnection, batch: Columns) -> Written:
    """Lock the batch's rows in id order, then update them in ONE statement.

    One statement, because the counter triggers are statement-level: they lock each mailing's
    counter row once per statement, in mailing order.
    """
    locked = (await connection.execute(_LOCK, {"ids": batch.ids})).all()
    result = await connection.execute(
        _UPDATE,
        {
            "ids": batch.ids,
            "statuses": batch.statuses,
            "attempts": batch.attempts,
            "errors": batch.errors,
            "sent_ats": batch.sent_ats,
            "dispatches": batch.dispatches,
        },
    )
    put_back = [
        message_id
        for message_id, status in zip(batch.ids, batch.statuses, strict=True)
        if status == MessageStatus.PENDING
    ]
    if put_back:
        # The planner may have put the zone to sleep until its window closes (its clock a
        # little ahead of the sender's): these must not wait that long to be sent again.
        waiting = await connection.execute(_REZONE_PUT_BACK, {"ids": put_back})
        await wake_zones(connection, ((row.mailing_id, row.timezone) for row in waiting))
    return Written(
        known_ids=frozenset(row.id for row in locked),
        mailing_ids=frozenset(row.mailing_id for row in locked),
        updated=int(getattr(result, "rowcount", 0)),
    )


async def finish_mailings(connection: AsyncConnection, mailing_ids: list[int]) -> list[int]:
    """Finish those running, materialised mailings with nothing pending or queued; their ids."""
    rows = await connection.execute(_FINISH, {"ids": mailing_ids})
    return sorted(row.id for row in rows)
