"""The sender's one query: the state of messages and their mailings, by message id."""

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.sender.logic import MessageState

_STATES = text(
    "SELECT m.id, m.status AS message_status, g.status AS mailing_status, g.end_at"
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
