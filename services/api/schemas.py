"""Request and response bodies of the REST API.

Requests forbid unknown keys: a misspelt ``filters`` or ``end`` silently ignored would send a
mailing to the wrong audience or at the wrong time.
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from services.api.fields import (
    MAX_LIST_ITEMS,
    MessageText,
    OperatorCode,
    Phone,
    Tag,
    TimeOfDay,
    Timestamp,
    TimeZoneName,
)
from shared.statuses import MailingStatus, MessageStatus

ItemT = TypeVar("ItemT")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Patch(_Request):
    """A partial update: omitted fields keep their value; ``null`` only where a field allows it."""

    _nullable: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _reject_nulls(self) -> Self:
        for name in self.model_fields_set - self._nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null; omit it to keep the current value")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the request sets, as given."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ErrorOut(BaseModel):
    """Any error other than a validation error."""

    detail: str = Field(examples=["mailing 42 not found"])


# --- clients -----------------------------------------------------------------------------


class ClientCreate(_Request):
    phone: Phone
    operator_code: OperatorCode | None = Field(
        default=None, description="Defaults to digits 2-4 of the phone."
    )
    tag: Tag = ""
    timezone: TimeZoneName = "UTC"


class ClientUpdate(_Patch):
    phone: Phone | None = None
    operator_code: OperatorCode | None = Field(
        default=None, description="Kept as it is when only the phone changes."
    )
    tag: Tag | None = None
    timezone: TimeZoneName | None = None


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    phone: str
    operator_code: str
    tag: str
    timezone: str
    created_at: datetime
    updated_at: datetime


# --- mailings ----------------------------------------------------------------------------


class Filter(_Request):
    """Which clients a mailing reaches; an empty list places no restriction."""

    operator_codes: list[OperatorCode] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)


class SendWindow(_Request):
    """Hours in each client's local time, half-open ``[start, end)``; wraps past midnight."""

    start: TimeOfDay
    end: TimeOfDay

    @field_validator("end")
    @classmethod
    def _differs_from_start(cls, end: str, info: ValidationInfo) -> str:
        if end == info.data.get("start"):
            raise ValueError("must differ from start (a window of zero or 24 hours is ambiguous)")
        return end


def _check_end_after_start(end_at: datetime, info: ValidationInfo) -> datetime:
    start_at = info.data.get("start_at")
    if start_at is not None and end_at <= start_at:
        raise ValueError("must be after start_at")
    return end_at


class MailingCreate(_Request):
    start_at: Timestamp = Field(description="Now or in the past starts the mailing at once.")
    end_at: Timestamp = Field(description="No provider request starts at or after it.")
    text: MessageText
    filter: Filter = Field(default_factory=Filter)
    send_window: SendWindow | None = None

    end_after_start = field_validator("end_at")(_check_end_after_start)


class MailingUpdate(_Patch):
    _nullable = frozenset({"send_window"})

    start_at: Timestamp | None = None
    end_at: Timestamp | None = None
    text: MessageText | None = None
    filter: Filter | None = None
    send_window: SendWindow | None = Field(default=None, description="null removes the window.")

    end_after_start = field_validator("end_at")(_check_end_after_start)


class StatusCounts(BaseModel):
    pending: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0


class Stats(BaseModel):
    """Messages by status; every status is present and the counts sum to ``total``."""

    total: int
    by_status: StatusCounts


class MailingOut(BaseModel):
    id: int
    start_at: datetime
    end_at: datetime
    text: str
    filter: Filter
    send_window: SendWindow | None
    status: MailingStatus
    created_at: datetime
    updated_at: datetime
    stats: Stats


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The provider's msgId.")
    mailing_id: int
    client_id: int | None = Field(description="null once the client has been deleted.")
    status: MessageStatus
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MailingStats(Stats):
    id: int
    status: MailingStatus


class OverallStats(Stats):
    mailings: list[MailingStats]


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: Annotated[
        str | None, Field(description="Pass as `cursor` for the next page; null on the last.")
    ]
