"""The sender's one query: the state of messages and their mailings, by message id."""

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.sender.logic import MessageState

# A message whose client was deleted (client_id cleared) counts as cancelled: its record stays,
# but nothing more may be sent to that client (SPEC §3).
_STATES = text(
    "SELECT m.id, g.status AS mailing_status, g.end_at,"
    " CASE WHEN m.client_id IS NULL AND m.status IN ('pending', 'queued') THEN 'cancelled'"
    " ELSE m.status END AS message_status"
    " FROM messages m JOIN mailings g ON g.id = m.mailing_id"
    " WHERE m.id = ANY(CAST(:ids AS bigint[]))"
)


async def message_states(
    connection: AsyncConnection, message_ids: Sequence[int]
) -> dict[int, MessageState]:
    """The state of each message that still exists, by id; deleted ones are absent."""
    rows = await connection.execute(_STATES, {"ids": list(message_ids)})
    return {
        row.id: MessageState(row.message_status, row.mailing_status, row.end_at) for row in rows
    }
