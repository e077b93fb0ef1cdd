"""The life cycles of a mailing and of a message (SPEC §2)."""

from enum import StrEnum


class MailingStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class MessageStatus(StrEnum):
    PENDING = "pending"
    """Waiting in the database to be dispatched (not yet due, or outside its window)."""
    QUEUED = "queued"
    """Published to the broker; a sender will try it."""
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


MAILING_FINAL = frozenset({MailingStatus.FINISHED, MailingStatus.CANCELLED})
MESSAGE_FINAL = frozenset(
    {MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.CANCELLED}
)
