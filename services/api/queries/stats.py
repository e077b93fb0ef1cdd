"""Statistics, read from the per-mailing counters kept by triggers (no message scan)."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Mailing, MailingCounts
from shared.statuses import MessageStatus

_COUNT_COLUMNS = [getattr(MailingCounts, status.value) for status in MessageStatus]

MailingCountsRow = tuple[int, str, dict[str, int]]


async def per_mailing(session: AsyncSession) -> list[MailingCountsRow]:
    """``(id, status, {message status: count})`` for every mailing, in id order."""
    query = (
        select(Mailing.id, Mailing.status, *_COUNT_COLUMNS)
        .join(MailingCounts, MailingCounts.mailing_id == Mailing.id)
        .order_by(Mailing.id)
    )
    rows = await session.execute(query)
    return [
        (
            int(row[0]),
            str(row[1]),
            {s.value: int(n) for s, n in zip(MessageStatus, row[2:], strict=True)},
        )
        for row in rows
    ]
