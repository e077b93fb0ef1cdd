"""Between request/response bodies and database rows."""

from datetime import time
from typing import Any

from services.api.schemas import Filter, MailingOut, SendWindow, Stats, StatusCounts
from shared.models import Mailing, MailingCounts
from shared.statuses import MailingStatus, MessageStatus


def stats(counts: MailingCounts | dict[str, int]) -> Stats:
    values = counts if isinstance(counts, dict) else {s: getattr(counts, s) for s in MessageStatus}
    by_status = StatusCounts(**{str(s): int(values[s]) for s in MessageStatus})
    return Stats(total=sum(by_status.model_dump().values()), by_status=by_status)


def mailing_out(mailing: Mailing, counts: MailingCounts) -> MailingOut:
    window = None
    if mailing.window_start is not None and mailing.window_end is not None:
        window = SendWindow(
            start=mailing.window_start.strftime("%H:%M"), end=mailing.window_end.strftime("%H:%M")
        )
    return MailingOut(
        id=mailing.id,
        start_at=mailing.start_at,
        end_at=mailing.end_at,
        text=mailing.text,
        filter=Filter(operator_codes=mailing.operator_codes, tags=mailing.tags),
        send_window=window,
        status=MailingStatus(mailing.status),
        created_at=mailing.created_at,
        updated_at=mailing.updated_at,
        stats=stats(counts),
    )


def mailing_columns(changes: dict[str, Any]) -> dict[str, Any]:
    """Request fields as column values: the filter and the window span two columns each."""
    columns = {k: v for k, v in changes.items() if k not in ("filter", "send_window")}
    if "filter" in changes:
        flt: Filter = changes["filter"]
        columns["operator_codes"] = list(dict.fromkeys(flt.operator_codes))
        columns["tags"] = list(dict.fromkeys(flt.tags))
    if "send_window" in changes:
        window: SendWindow | None = changes["send_window"]
        columns["window_start"] = _hhmm(window.start) if window else None
        columns["window_end"] = _hhmm(window.end) if window else None
    return columns


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))
