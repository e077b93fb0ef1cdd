"""What may change in a mailing, by its status (SPEC §3), as pure functions."""

from datetime import datetime
from typing import Any

from services.api.errors import Conflict, InvalidField
from shared.statuses import MAILING_FINAL, MailingStatus

# A running mailing has fixed its audience and its text is being sent: only the deadline may
# move, so operators can stop it earlier or give a slow provider more time.
_RUNNING_EDITABLE = frozenset({"end_at"})


def check_patch(mailing_id: int, status: str, changes: dict[str, Any], now: datetime) -> None:
    """Raise if ``changes`` may not be applied to a mailing in ``status``."""
    if status in MAILING_FINAL:
        raise Conflict(f"mailing {mailing_id} is {status}; it can no longer be changed")
    if status == MailingStatus.RUNNING:
        refused = sorted(set(changes) - _RUNNING_EDITABLE)
        if refused:
            raise Conflict(
                f"mailing {mailing_id} is running: only end_at can change, not "
                + ", ".join(refused)
            )
    if "end_at" in changes:
        check_end_in_future(changes["end_at"], now)


def check_end_in_future(end_at: datetime, now: datetime) -> None:
    """On creation and whenever a PATCH sets it: a deadline already past sends nothing."""
    if end_at <= now:
        raise InvalidField("end_at", "end_at must be in the future")


def check_end_after_start(start_at: datetime, end_at: datetime) -> None:
    """The stored start and the new end (or the reverse) must still be in order."""
    if end_at <= start_at:
        raise InvalidField("end_at", "end_at must be after start_at")


def check_cancel(mailing_id: int, status: str) -> None:
    """A cancelled mailing may be cancelled again (idempotent); a finished one may not."""
    if status == MailingStatus.FINISHED:
        raise Conflict(f"mailing {mailing_id} is finished; there is nothing left to cancel")
