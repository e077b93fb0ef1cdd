"""The overall statistics route: every mailing's counts and the totals."""

from fastapi import APIRouter

from services.api.convert import stats
from services.api.deps import Session, error_responses
from services.api.queries import stats as queries
from services.api.schemas import MailingStats, OverallStats
from shared.statuses import MessageStatus

router = APIRouter(tags=["stats"])


@router.get("/stats", responses=error_responses())
async def overall_stats(session: Session) -> OverallStats:
    """Every mailing with its counts by status, and the totals over all of them."""
    async with session.begin():
        rows = await queries.per_mailing(session)
    mailings = []
    totals = dict.fromkeys(map(str, MessageStatus), 0)
    for mailing_id, status, by_status in rows:
        for key, count in by_status.items():
            totals[key] += count
        mailings.append(MailingStats(id=mailing_id, status=status, **stats(by_status).model_dump()))
    overall = stats(totals)
    return OverallStats(total=overall.total, by_status=overall.by_status, mailings=mailings)
