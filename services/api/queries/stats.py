"""Statistics, read from the per-mailing counters kept by triggers (no message scan)."""

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Mailing, MailingCounts
from shared.statuses import MessageStatus

_COUNT_COLUMNS = [getattr(MailingCounts, status.value) for status in MessageStatus]


async def per_mailing(session: AsyncSession) -> list[Row[tuple[Any, ...]]]:
    """``(id, status, pending, queued, sent, failed, expired, cancelled)`` for every mailing."""
    query = (
        select(Mailing.id, Mailing.status, *_COUNT_COLUMNS)
        .join(MailingCounts, MailingCounts.mailing_id == Mailing.id)
        .order_by(Mailing.id)
    )
    return list(await session.execute(query))
