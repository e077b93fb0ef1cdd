"""Waking the zones of windowed mailings: how a service says "messages wait here now".

The planner dispatches a windowed mailing zone by zone and lets a zone sleep until its window
next opens or closes (``mailing_zones.wake_at``). Whoever makes a message pending in a zone
while it sleeps (the planner materialising the audience, the status service putting back a
message whose window closed, the API moving a client to another zone) wakes that zone here:
it becomes due at once and its ``version`` goes up. A planner visiting the zone writes its
next sleep only for the version it read, so a wake-up landing during a visit is never
overwritten by it, and no lock is held while the planner waits for the broker.

Every writer takes its locks in one order: message rows, then ``mailing_counts`` (the counter
triggers), then ``mailing_zones``, the last in key order. So a wake-up comes after the
transaction's message writes, never before them.
"""

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# least() ignores NULL: a zone retired (NULL) is due again, and the planner retires or expires
# it once more if nothing can be sent there.
_WAKE = text("""
INSERT INTO mailing_zones AS z (mailing_id, timezone, wake_at)
SELECT DISTINCT w.mailing_id, w.timezone, now()
FROM unnest(CAST(:mailing_ids AS bigint[]), CAST(:timezones AS text[])) AS w(mailing_id, timezone)
ORDER BY 1, 2
ON CONFLICT (mailing_id, timezone) DO UPDATE
SET wake_at = least(z.wake_at, excluded.wake_at), version = z.version + 1
""")


async def wake_zones(
    connection: AsyncConnection | AsyncSession, zones: Iterable[tuple[int, str]]
) -> None:
    """Make each ``(mailing_id, timezone)`` due now, creating its row if it has none."""
    pairs = sorted(set(zones))
    if pairs:
        params = {"mailing_ids": [m for m, _ in pairs], "timezones": [t for _, t in pairs]}
        await connection.execute(_WAKE, params)
