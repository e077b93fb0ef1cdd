"""Keyset pagination: an opaque cursor carries the last id of the page before.

Unlike ``OFFSET``, a keyset page costs the same at any depth and does not skip or repeat rows
when rows are inserted or deleted between two pages.
"""

import base64
import binascii
from typing import Annotated

from fastapi import Query

from services.api.errors import InvalidField

MAX_ID = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(max_length=64, description="The `next_cursor` of the previous page."),
]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id after which the page starts (0 for the first page)."""
    if cursor is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, value = raw.partition(":")
        last_id = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last_id = -1
        prefix = ""
    if prefix != "id" or not 0 <= last_id <= MAX_ID:
        raise InvalidField(
            "cursor", "cursor is not one this API issued; start without it", source="query"
        )
    return last_id


def next_cursor(ids: list[int], limit: int) -> str | None:
    """A cursor when there is more, else None.

    Callers fetch ``limit + 1`` rows and show ``limit``: the extra row tells whether a next
    page exists, so the last page says null instead of leading to an empty one.
    """
    return encode_cursor(ids[limit - 1]) if len(ids) > limit else None
