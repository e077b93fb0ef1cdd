"""Field rules of SPEC §2, as annotated types the request schemas share.

Each rule is a plain function too, so property-based tests can drive it directly. Regexes use
``[0-9]`` and ``fullmatch``: ``\\d`` also matches other scripts' digits and ``$`` accepts a
trailing newline, both of which would let malformed phones through.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from shared.timezones import is_known_zone

# Bodies for re.fullmatch; the OpenAPI schema gets them anchored.
PHONE_RE = r"7[0-9]{10}"
OPERATOR_CODE_RE = r"[0-9]{3}"
HHMM_RE = r"([01][0-9]|2[0-3]):[0-5][0-9]"
MAX_LIST_ITEMS = 1000


def check_storable(value: str) -> str:
    """PostgreSQL text holds neither NUL nor lone surrogates (which JSON can smuggle in)."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


def check_phone(value: str) -> str:
    if not re.fullmatch(PHONE_RE, value):
        raise ValueError(
            "must be 7 followed by 10 digits, e.g. 79161234567 (8… and +7… forms are rejected)"
        )
    return value


def check_operator_code(value: str) -> str:
    if not re.fullmatch(OPERATOR_CODE_RE, value):
        raise ValueError("must be exactly 3 digits, e.g. 916")
    return value


def check_timezone(value: str) -> str:
    if not is_known_zone(value):
        raise ValueError("must be an IANA time zone name such as Europe/Moscow or UTC")
    return value


def check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def check_hhmm(value: str) -> str:
    if not re.fullmatch(HHMM_RE, value):
        raise ValueError("must be a time of day as HH:MM, from 00:00 to 23:59")
    return value


def require_string(value: Any) -> Any:
    """Reject numbers where a timestamp is expected: only ISO 8601 text says its offset."""
    if not isinstance(value, (str, datetime)):
        raise ValueError("must be an ISO 8601 timestamp with an offset, e.g. 2027-01-01T09:00:00Z")
    return value


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a time-zone offset, e.g. 2027-01-01T09:00:00+03:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of the supported range (years 1 to 9999)") from None


Phone = Annotated[
    str,
    # No max_length: check_phone's message explains the 8…/+7… forms a length error would not.
    Field(json_schema_extra={"pattern": f"^{PHONE_RE}$"}, examples=["79161234567"]),
    AfterValidator(check_phone),
]
OperatorCode = Annotated[
    str,
    Field(max_length=3, json_schema_extra={"pattern": f"^{OPERATOR_CODE_RE}$"}, examples=["916"]),
    AfterValidator(check_operator_code),
]
Tag = Annotated[str, Field(max_length=64, examples=["vip"]), AfterValidator(check_storable)]
TimeZoneName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        examples=["Europe/Moscow"],
        # The list is tzdata's, hundreds of names that change between releases: stated, not
        # enumerated in the schema.
        description="An IANA time zone name (Europe/Moscow, UTC); offsets such as UTC+3 and "
        "host aliases such as localtime are refused.",
    ),
    AfterValidator(check_timezone),
]
MessageText = Annotated[
    str,
    Field(min_length=1, max_length=2000, examples=["Spring sale: -20% until Sunday"]),
    AfterValidator(check_storable),
    AfterValidator(check_not_blank),
]
TimeOfDay = Annotated[
    str,
    Field(json_schema_extra={"pattern": f"^{HHMM_RE}$"}, examples=["09:00"]),
    AfterValidator(check_hhmm),
]
Timestamp = Annotated[
    datetime,
    BeforeValidator(require_string),
    AfterValidator(to_utc),
    Field(examples=["2027-01-01T09:00:00+03:00"]),
]
