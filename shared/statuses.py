"""The life cycles of a mailing and of a message (SPEC §2)."""

from enum import StrEnum


class MailingStatus(StrEnum):
    SCHEDULED = "scheduled"
    """Waiting for its ``start_at``; every field may still change."""
    RUNNING = "running"
    """Its audience is fixed and messages are going out; only ``end_at`` may change."""
    FINISHED = "finished"
    """Every message has a final status."""
    CANCELLED = "cancelled"
    """Stopped by an operator; its unsent messages were cancelled."""


class MessageStatus(StrEnum):
    PENDING = "pending"
    """Waiting in the database to be dispatched (not yet due, or outside its window)."""
    QUEUED = "queued"
    """Published to the broker; a sender will try it."""
    SENT = "sent"
    """The provider accepted it (HTTP 200 with code 0)."""
    FAILED = "failed"
    """Refused for good (400/404/422), or out of attempts."""
    EXPIRED = "expired"
    """Its mailing's ``end_at`` came before it could be sent."""
    CANCELLED = "cancelled"
    """Its mailing was cancelled or its client deleted before it was sent."""


MAILING_FINAL = frozenset({MailingStatus.FINISHED, MailingStatus.CANCELLED})
MESSAGE_FINAL = frozenset(
    {MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.CANCELLED}
)
