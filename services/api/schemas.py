"""Request and response bodies of the REST API.

Requests forbid unknown keys: a misspelt ``filters`` or ``end`` silently ignored would send a
mailing to the wrong audience or at the wrong time.
"""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

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


def _document_nulls(schema: JsonDict, model: type[Any]) -> None:
    """In the schema too, a field that refuses null may be omitted but not set to null."""
    nullable: frozenset[str] = getattr(model, "_nullable", frozenset())
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, field in properties.items():
        if name in nullable or not isinstance(field, dict):
            continue
        field.pop("default", None)
        arms = field.pop("anyOf", None)
        if not isinstance(arms, list):
            continue
        kept = [arm for arm in arms if arm != {"type": "null"}]
        if len(kept) == 1 and isinstance(kept[0], dict):
            field.update({**kept[0], **field})  # the field's own examples and description win
        else:
            field["anyOf"] = kept


class _Patch(_Request):
    """A partial update: omitted fields keep their value; ``null`` only where a field allows it."""

    # The None defaults only mark a field as omitted; the schema must not offer null for them.
    model_config = ConfigDict(json_schema_extra=_document_nulls)

    _nullable: ClassVar[frozenset[str]] = frozenset()

    # A field validator, not a model validator, so that the error's loc names the field.
    @field_validator("*")
    @classmethod
    def _reject_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls._nullable:
            raise ValueError("may not be null; omit the field to keep its current value")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the request sets, as given."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ErrorOut(BaseModel):
    """Any error other than a validation error."""

    detail: str = Field(examples=["mailing 42 not found"])


# --- clients -----------------------------------------------------------------------------


class ClientCreate(_Request):
    """A new client: whom a mailing can reach, and where their clock is."""

    phone: Phone
    operator_code: OperatorCode | None = Field(
        default=None, description="Defaults to digits 2-4 of the phone."
    )
    tag: Tag = ""
    timezone: TimeZoneName = "UTC"


class ClientUpdate(_Patch):
    """New values for some of a client's fields."""

    phone: Phone | None = None
    operator_code: OperatorCode | None = Field(
        default=None, description="Kept as it is when only the phone changes."
    )
    tag: Tag | None = None
    timezone: TimeZoneName | None = None


class ClientOut(BaseModel):
    """A client as stored; timestamps in UTC."""

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
    """Hours in each client's local time, half-open ``[start, end)``; wraps past midnight.

    Outside it, a client's message waits (``pending``) for the next opening in the client's
    zone, exact across clock changes; if that opening is at or after ``end_at``, it expires.
    """

    # Examples that differ, so the documented example is a request the API accepts.
    start: TimeOfDay = Field(examples=["09:00"])
    end: TimeOfDay = Field(examples=["21:00"])

    @field_validator("end")
    @classmethod
    def _differs_from_start(cls, end: str, info: ValidationInfo) -> str:
        if end == info.data.get("start"):
            raise ValueError("must differ from start (a window of zero or 24 hours is ambiguous)")
        return end


def _check_end_after_start(end_at: datetime, info: ValidationInfo) -> datetime:
    start_at = info.data.get("start_at")
    # A null end_at is refused by _Patch on its own; it has no order to check.
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise ValueError("must be after start_at")
    return end_at


# Later than the start_at example and far ahead, so the example stays one the API accepts.
_END_AT_EXAMPLE = "2030-01-08T21:00:00+03:00"


class MailingCreate(_Request):
    """A new mailing; it starts as ``scheduled``."""

    start_at: Timestamp = Field(description="Now or in the past starts the mailing at once.")
    end_at: Timestamp = Field(
        description="No provider request starts at or after it.", examples=[_END_AT_EXAMPLE]
    )
    text: MessageText
    filter: Filter = Field(default_factory=Filter)
    send_window: SendWindow | None = None

    end_after_start = field_validator("end_at")(_check_end_after_start)


class MailingUpdate(_Patch):
    """New values for some of a mailing's fields; what may change depends on its status."""

    _nullable = frozenset({"send_window"})

    start_at: Timestamp | None = None
    end_at: Timestamp | None = Field(default=None, examples=[_END_AT_EXAMPLE])
    text: MessageText | None = None
    filter: Filter | None = None
    send_window: SendWindow | None = Field(default=None, description="null removes the window.")

    end_after_start = field_validator("end_at")(_check_end_after_start)


class StatusCounts(BaseModel):
    """How many of the messages are in each status; zeros included."""

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
    """A mailing with its statistics; timestamps in UTC."""

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
    """One message of a mailing: what happened to it at the provider."""

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
    """One mailing's counts, in ``GET /stats``."""

    id: int
    status: MailingStatus


class OverallStats(Stats):
    """Every mailing's counts, and the totals over all of them."""

    mailings: list[MailingStats]


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, in id order."""

    items: list[ItemT]
    next_cursor: Annotated[
        str | None, Field(description="Pass as `cursor` for the next page; null on the last.")
    ]
