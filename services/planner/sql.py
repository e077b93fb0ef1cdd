"""Every statement the planner runs, with the locking each one relies on.

Several planners may run at once, so every claim takes row locks with ``SKIP LOCKED`` (another
replica's rows are left to it) and every lock is transaction-scoped. Message rows are locked in
id order, as the status writer and the API lock them, and each multi-row message write is one
statement: the counter triggers then lock ``mailing_counts`` rows once, in mailing order.
``mailing_zones`` rows come last, after the counters (see :mod:`shared.zone_wakes`).
Mailing rows are locked ``FOR NO KEY UPDATE``, which still lets messages that reference them be
inserted (their foreign-key check takes ``FOR KEY SHARE``).
"""

from sqlalchemy import text

DEADLINE_PASSED = "deadline passed"
"""``last_error`` of a message the planner expires."""

# The audience is fixed at start: clients created later have higher ids and are left out.
START_DUE = text("""
WITH due AS (
    SELECT id FROM mailings
    WHERE status = 'scheduled' AND start_at <= now()
    ORDER BY id
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE mailings AS m
SET status = 'running',
    audience_until_client_id = (SELECT coalesce(max(id), 0) FROM clients),
    audience_done_client_id = 0,
    updated_at = now()
FROM due
WHERE m.id = due.id
RETURNING m.id, m.audience_until_client_id
""")

UNMATERIALISED = text("""
SELECT id FROM mailings WHERE status = 'running' AND materialized_at IS NULL ORDER BY id
""")

# Held for one chunk. A row lock rather than an advisory lock: it also conflicts with the lock
# the API's cancel takes on the row, so a cancel and a chunk never overlap. Messages inserted
# while a cancel runs would escape it and stay pending in a cancelled mailing.
CLAIM_AUDIENCE = text("""
SELECT coalesce(audience_done_client_id, 0) AS done_id, audience_until_client_id AS until_id
FROM mailings
WHERE id = :mailing_id AND status = 'running' AND materialized_at IS NULL
FOR NO KEY UPDATE SKIP LOCKED
""")

# One chunk: scan the next clients by id, insert a message for each one the filter matches
# (SPEC §2: an empty list matches anything; exact, case-sensitive comparison). A windowed
# mailing's message carries its client's zone; the zones a chunk brings are woken after it
# (shared.zone_wakes), since the counter triggers lock before mailing_zones may be.
MATERIALISE_CHUNK = text("""
WITH scanned AS (
    SELECT id, operator_code, tag, timezone FROM clients
    WHERE id > :done_id AND id <= :until_id
    ORDER BY id
    LIMIT :chunk_size
), inserted AS (
    INSERT INTO messages (mailing_id, client_id, timezone)
    SELECT m.id, s.id, CASE WHEN m.window_start IS NOT NULL THEN s.timezone END
    FROM scanned AS s JOIN mailings AS m ON m.id = :mailing_id
    WHERE (cardinality(m.operator_codes) = 0 OR s.operator_code = ANY (m.operator_codes))
      AND (cardinality(m.tags) = 0 OR s.tag = ANY (m.tags))
    ORDER BY s.id
    ON CONFLICT (mailing_id, client_id) DO NOTHING
    RETURNING timezone
)
SELECT (SELECT count(*) FROM scanned) AS scanned,
       (SELECT max(id) FROM scanned) AS last_id,
       (SELECT count(*) FROM inserted) AS inserted,
       (SELECT coalesce(array_agg(DISTINCT timezone), '{}') FROM inserted
        WHERE timezone IS NOT NULL) AS zones
""")

ADVANCE_AUDIENCE = text("""
UPDATE mailings
SET audience_done_client_id = :done_id,
    materialized_at = CASE WHEN CAST(:complete AS boolean) THEN now() END,
    updated_at = now()
WHERE id = :mailing_id
RETURNING (
    SELECT pending + queued + sent + failed + expired + cancelled
    FROM mailing_counts WHERE mailing_id = :mailing_id
) AS total
""")

# Mailings with a send window are dispatched zone by zone (DUE_ZONES).
#
# A mailing whose audience is still being materialised gets its first batch at once, so its
# first requests go out within seconds, and the rest once the audience is complete. Sending
# the rest alongside would have the inserts of a big audience compete with the whole pipeline
# for the same database and cores (a million clients took 82 s to materialise that way, 24 s
# this way: bench S3), for no gain in the mailing's total time.
DISPATCHABLE = text("""
SELECT m.id, m.materialized_at IS NOT NULL AS complete
FROM mailings AS m JOIN mailing_counts AS c ON c.mailing_id = m.id
WHERE m.status = 'running' AND m.end_at > now() AND m.window_start IS NULL
  AND (m.materialized_at IS NOT NULL
       OR c.queued + c.sent + c.failed + c.expired + c.cancelled = 0)
ORDER BY m.id
""")

# The columns of a claimed message that its work message needs. A message queued before (a
# planner died before its commit, or a sender put it back for its window) resumes its attempt
# count and its last error. The claiming transaction's id goes into the work message and, by
# MARK_QUEUED, into the row: a sender sends only a copy whose transaction committed.
_CLAIMED = """
SELECT msg.id AS message_id, msg.client_id, c.phone, m.text, m.end_at,
       msg.attempts, msg.last_error, msg.dispatches,
       CAST(CAST(pg_current_xact_id() AS text) AS bigint) AS dispatch_xid
FROM messages AS msg
JOIN mailings AS m ON m.id = msg.mailing_id
JOIN clients AS c ON c.id = msg.client_id
"""

# A message whose client is gone (client_id set NULL) drops out of the join; CANCEL_ORPHANS
# settles it.
CLAIM_BATCH = text(f"""{_CLAIMED}
WHERE msg.mailing_id = :mailing_id AND msg.status = 'pending'
  AND m.status = 'running' AND m.end_at > now()
ORDER BY msg.id
LIMIT :batch_size
FOR UPDATE OF msg SKIP LOCKED
""")

# The same for one zone of a windowed mailing (ix_messages_pending_zone).
CLAIM_ZONE_BATCH = text(f"""{_CLAIMED}
WHERE msg.mailing_id = :mailing_id AND msg.timezone = :timezone AND msg.status = 'pending'
  AND m.status = 'running' AND m.end_at > now()
ORDER BY msg.id
LIMIT :batch_size
FOR UPDATE OF msg SKIP LOCKED
""")

# The rows are already locked by the claim in this transaction.
MARK_QUEUED = text("""
UPDATE messages
SET status = 'queued', dispatches = dispatches + 1,
    dispatch_xid = CAST(CAST(pg_current_xact_id() AS text) AS bigint), updated_at = now()
WHERE id = ANY (CAST(:ids AS bigint[]))
""")

# Zones of running windowed mailings that are due a look, most overdue first.
DUE_ZONES = text("""
SELECT z.mailing_id, z.timezone, z.version, m.window_start, m.window_end, m.end_at
FROM mailing_zones AS z JOIN mailings AS m ON m.id = z.mailing_id
WHERE z.wake_at <= :now AND m.status = 'running' AND m.end_at > :now
ORDER BY z.wake_at, z.mailing_id, z.timezone
LIMIT :limit
""")

# Zones of mailings that finished or were cancelled: nothing is dispatched there any more, and
# leaving them due would make every tick read them again. Picked in key order, and rows someone
# else holds are left for a later tick, so this never waits in a lock order of its own.
RETIRE_ZONES = text("""
WITH picked AS MATERIALIZED (
    SELECT z.mailing_id, z.timezone FROM mailing_zones AS z
    JOIN mailings AS m ON m.id = z.mailing_id
    WHERE z.wake_at <= :now AND m.status <> 'running'
    ORDER BY z.mailing_id, z.timezone
    FOR UPDATE OF z SKIP LOCKED
)
UPDATE mailing_zones AS z SET wake_at = NULL
FROM picked WHERE z.mailing_id = picked.mailing_id AND z.timezone = picked.timezone
""")

# A sleep applies only for the version the visit read: a wake-up since then (shared.zone_wakes)
# wins, and the zone stays due.
SLEEP_ZONE = text("""
UPDATE mailing_zones SET wake_at = :wake_at
WHERE mailing_id = :mailing_id AND timezone = :timezone AND version = :version
""")

# An open zone sleeps until its window closes, and an expired one for good, only once none of
# its messages is pending. Two planners visiting one zone claim disjoint batches (SKIP LOCKED);
# the rows one of them claimed still read as pending to the other until it commits, so if it
# rolls back (a failed publish, a crash) the zone is still due and they are claimed again.
SLEEP_ZONE_IF_EMPTY = text("""
UPDATE mailing_zones SET wake_at = :wake_at
WHERE mailing_id = :mailing_id AND timezone = :timezone AND version = :version
  AND NOT EXISTS (
      SELECT 1 FROM messages
      WHERE mailing_id = :mailing_id AND timezone = :timezone AND status = 'pending'
  )
""")

EXPIRE_ZONE = text("""
WITH picked AS MATERIALIZED (
    SELECT id FROM messages
    WHERE mailing_id = :mailing_id AND timezone = :timezone AND status = 'pending'
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE messages AS msg SET status = 'expired', last_error = :last_error, updated_at = now()
FROM picked WHERE msg.id = picked.id AND msg.status = 'pending'
""")


# The three below settle messages that can no longer be sent, a bounded number per statement.
# The rows are picked in a MATERIALIZED CTE, not in ``WHERE id IN (... LIMIT ...)``: PostgreSQL
# may run such a subquery again for each outer row, and since the rows it updated no longer
# match, each run picks new ones and the bound is lost (seen once an index changed the plan).
# SKIP LOCKED: a row another replica is dispatching right now becomes queued, and is looked at
# again after the grace.
EXPIRE_PENDING = text("""
WITH picked AS MATERIALIZED (
    SELECT msg.id FROM messages AS msg JOIN mailings AS m ON m.id = msg.mailing_id
    WHERE m.status = 'running' AND m.end_at <= now() AND msg.status = 'pending'
    ORDER BY msg.id
    LIMIT :limit
    FOR UPDATE OF msg SKIP LOCKED
)
UPDATE messages AS msg SET status = 'expired', last_error = :last_error, updated_at = now()
FROM picked WHERE msg.id = picked.id AND msg.status = 'pending'
RETURNING mailing_id
""")

# A queued message keeps the sender's last error if it had one: that is the more useful word.
EXPIRE_QUEUED = text("""
WITH picked AS MATERIALIZED (
    SELECT msg.id FROM messages AS msg JOIN mailings AS m ON m.id = msg.mailing_id
    WHERE m.status = 'running' AND m.end_at <= now() - make_interval(secs => :grace_s)
      AND msg.status = 'queued'
    ORDER BY msg.id
    LIMIT :limit
    FOR UPDATE OF msg SKIP LOCKED
)
UPDATE messages AS msg
SET status = 'expired', last_error = coalesce(msg.last_error, :last_error), updated_at = now()
FROM picked WHERE msg.id = picked.id AND msg.status = 'queued'
RETURNING mailing_id
""")

# Two kinds of messages no sender will settle:
# - pending, of a client deleted while its message was being inserted (the API's cancel could
#   not see the message yet, and the delete then cleared its client_id), or put back to wait
#   for its window by a sender just as its mailing was cancelled;
# - queued, of a cancelled mailing or a deleted client, that no sender reported within the
#   grace (the API cancels only pending ones, since a queued one may be at the provider; the
#   senders report the rest, unless none is running). By then a request for it has ended.
CANCEL_ORPHANS = text("""
WITH picked AS MATERIALIZED (
    SELECT msg.id FROM messages AS msg JOIN mailings AS m ON m.id = msg.mailing_id
    WHERE (msg.status = 'pending' AND (m.status = 'cancelled' OR msg.client_id IS NULL))
       OR (msg.status = 'queued' AND (m.status = 'cancelled' OR msg.client_id IS NULL)
           AND greatest(m.updated_at, msg.updated_at) <= now() - make_interval(secs => :grace_s))
    ORDER BY msg.id
    LIMIT :limit
    FOR UPDATE OF msg SKIP LOCKED
)
UPDATE messages AS msg SET status = 'cancelled', updated_at = now()
FROM picked WHERE msg.id = picked.id AND msg.status IN ('pending', 'queued')
RETURNING mailing_id
""")

FINISH = text("""
WITH done AS (
    SELECT m.id FROM mailings AS m JOIN mailing_counts AS c ON c.mailing_id = m.id
    WHERE m.status = 'running' AND m.materialized_at IS NOT NULL AND c.pending + c.queued = 0
    ORDER BY m.id
    FOR NO KEY UPDATE OF m SKIP LOCKED
)
UPDATE mailings AS m SET status = 'finished', updated_at = now()
FROM done JOIN mailing_counts AS c ON c.mailing_id = done.id
WHERE m.id = done.id
RETURNING m.id, c.sent, c.failed, c.expired, c.cancelled
""")
