"""Keyset pagination: an opaque cursor carries the last id of the page before.

Unlike ``OFFSET``, a keyset page costs the same at any depth and does not skip or repeat rows
when rows are inserted or deleted between two pages.
"""

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query

from services.api.errors import InvalidField
from services.api.schemas import Page
from shared.models import MAX_ID

MAX_PAGE_ITEMS = 500

RowT = TypeVar("RowT")
ItemT = TypeVar("ItemT")

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_ITEMS, description="Items per page.")]
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


def page(
    rows: Sequence[RowT], limit: int, item: Callable[[RowT], ItemT], row_id: Callable[[RowT], int]
) -> Page[ItemT]:
    """One page from ``limit + 1`` fetched rows.

    The extra row only tells whether a next page exists, so the last page says null instead
    of leading to an empty one.
    """
    shown = rows[:limit]
    more = len(rows) > limit
    return Page(
        items=[item(row) for row in shown],
        next_cursor=encode_cursor(row_id(shown[-1])) if more else None,
    )
