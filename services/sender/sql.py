"""The sender's one query: the state of messages and their mailings, by message id."""

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.sender.logic import MessageState
from shared.timezones import zone_or_utc
from shared.windows import Window

# A message whose client was deleted (client_id cleared) counts as cancelled: its record stays,
# but nothing more may be sent to that client (SPEC §3). The window is read in the client's
# zone as it is now, which may have changed since the message was dispatched.
_STATES = text(
    "SELECT m.id, g.status AS mailing_status, g.end_at, g.window_start, g.window_end,"
    " c.timezone, m.dispatch_xid, m.dispatches,"
    " CASE WHEN m.client_id IS NULL AND m.status IN ('pending', 'queued') THEN 'cancelled'"
    " ELSE m.status END AS message_status"
    " FROM messages m JOIN mailings g ON g.id = m.mailing_id"
    " LEFT JOIN clients c ON c.id = m.client_id"
    " WHERE m.id = ANY(CAST(:ids AS bigint[]))"
)


async def message_states(
    connection: AsyncConnection, message_ids: Sequence[int]
) -> dict[int, MessageState]:
    """The state of each message that still exists, by id; deleted ones are absent."""
    rows = await connection.execute(_STATES, {"ids": list(message_ids)})
    states = {}
    for row in rows:
        window = zone = None
        if row.window_start is not None and row.timezone is not None:
            window, zone = Window(row.window_start, row.window_end), zone_or_utc(row.timezone)
        states[row.id] = MessageState(
            row.message_status,
            row.mailing_status,
            row.end_at,
            window,
            zone,
            row.dispatch_xid,
            row.dispatches,
        )
    return states
