"""From delivered bodies to one row update per message: pure functions, no I/O.

A batch may hold several results of one message (a retry's progress, then its outcome, or a
redelivered copy); they are merged here so the batch is ONE ``UPDATE`` with one row per id.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from shared.messages import MAX_RESULTS_PER_BATCH, Result, ResultBatch, Work
from shared.models import MAX_ID
from shared.statuses import MESSAGE_FINAL, MessageStatus

POISON_ERROR = "poison: redelivered too often"
"""``last_error`` of a message whose work message went over the delivery limit."""

MAX_INTEGER = 2**31 - 1
"""``messages.attempts`` and ``messages.dispatches`` are ``integer``s; a larger count is not a
real one."""
MAX_ERROR_CHARS = 1_000
"""``last_error`` is for people to read; a longer text (a whole HTML page) is cut here."""


_RESULTS_BODY: TypeAdapter[ResultBatch | Result] = TypeAdapter(ResultBatch | Result)


class _Entries(BaseModel):
    """A batch's shape only, each result still unchecked."""

    results: list[Any] = Field(min_length=1, max_length=MAX_RESULTS_PER_BATCH)


@dataclass(frozen=True)
class Parsed:
    """The results a body from the results queue holds, in the order they were reported."""

    results: list[Result]
    dropped: list[int | None]
    """One per result it held that is invalid or that no row could ever take (see
    :func:`_storable`): its message id, or ``None`` where none could be read."""


def parse_results(body: bytes) -> Parsed | None:
    """A batch of results, or a lone one (from a sender older than batches); ``None`` if the
    body is neither, or if no row could take any result in it."""
    try:
        parsed = _RESULTS_BODY.validate_json(body)
    except ValidationError:
        return _parse_each(body)
    given = parsed.results if isinstance(parsed, ResultBatch) else [parsed]
    return _kept(given, [])


def _parse_each(body: bytes) -> Parsed | None:
    """A batch with an invalid result in it, one result at a time: the valid ones are still
    written, and only the others are lost (named in the log by the caller)."""
    try:
        entries = _Entries.model_validate_json(body).results
    except ValidationError:
        return None
    valid, dropped = [], []
    for entry in entries:
        try:
            valid.append(Result.model_validate(entry))
        except ValidationError:
            dropped.append(_message_id_in(entry))
    return _kept(valid, dropped)


def _message_id_in(entry: Any) -> int | None:
    found = entry.get("message_id") if isinstance(entry, dict) else None
    return found if type(found) is int else None


def _kept(results: list[Result], dropped: list[int | None]) -> Parsed | None:
    """The storable ones of ``results``, beside the ``dropped`` ones and those no row could
    take; ``None`` if none."""
    storable, unstorable = [], []
    for result in results:
        kept = _storable(result)
        if kept is None:
            unstorable.append(result.message_id)
        else:
            storable.append(kept)
    return Parsed(storable, [*dropped, *unstorable]) if storable else None


def parse_dead_work(body: bytes) -> Result | None:
    """What a work message dead-lettered over the delivery limit means: its message failed."""
    try:
        work = Work.model_validate_json(body)
    except ValidationError:
        return None
    result = Result(
        message_id=work.message_id,
        status=MessageStatus.FAILED,
        attempts=work.attempt,
        last_error=POISON_ERROR,
    )
    return _storable(result)


def _storable(result: Result) -> Result | None:
    """The result as the database can take it, or ``None`` if no row could ever hold it.

    Every value the ``UPDATE`` could refuse is dealt with here, because a refused statement
    fails the whole batch: PostgreSQL's ``text`` holds no NUL character, ``attempts`` and
    ``dispatches`` are ``integer``s, ids are ``bigint``.
    """
    if not 1 <= result.message_id <= MAX_ID or result.attempts > MAX_INTEGER:
        return None
    if result.dispatch is not None and result.dispatch > MAX_INTEGER:
        return None
    changes: dict[str, object] = {}
    if result.last_error is not None:
        changes["last_error"] = result.last_error.replace("\x00", "")[:MAX_ERROR_CHARS]
    if result.sent_at is not None and result.sent_at.tzinfo is None:
        changes["sent_at"] = result.sent_at.replace(tzinfo=UTC)  # the senders write UTC
    return result.model_copy(update=changes) if changes else result


def _rank(result: Result) -> int:
    if result.status == MessageStatus.SENT:
        return 2  # a provider-confirmed success is what the statistics count: it wins
    return 1 if result.status in MESSAGE_FINAL else 0


def combine(earlier: Result, later: Result) -> Result:
    """Two results of one message as one, as if ``later`` had arrived after ``earlier``.

    ``sent`` beats another final status, a final status beats a progress one; between two
    finals the first one stays (a final status never changes), between two progress reports
    the later one. Attempts never go down; the last error given is kept.
    """
    if _rank(later) > _rank(earlier) or _rank(later) == _rank(earlier) == 0:
        status, sent_at = later.status, later.sent_at
    else:
        status, sent_at = earlier.status, earlier.sent_at
    return Result(
        message_id=earlier.message_id,
        status=status,
        attempts=max(earlier.attempts, later.attempts),
        last_error=later.last_error if later.last_error is not None else earlier.last_error,
        sent_at=sent_at if status == MessageStatus.SENT else None,
        dispatch=_dispatch(status, earlier, later),
    )


def _dispatch(status: MessageStatus, *results: Result) -> int | None:
    """The newest dispatch among the results that gave ``status``.

    Two put-backs of one message in one batch: a redelivered copy of an older one may arrive
    last, and only the newest dispatch can move the message back to ``pending``.
    """
    dispatches = [r.dispatch for r in results if r.status == status and r.dispatch is not None]
    return max(dispatches, default=None)


def merge(results: Iterable[Result]) -> dict[int, Result]:
    """One result per message id, combining each id's results in the order they arrived."""
    merged: dict[int, Result] = {}
    for result in results:
        seen = merged.get(result.message_id)
        merged[result.message_id] = result if seen is None else combine(seen, result)
    return merged


@dataclass(frozen=True)
class Columns:
    """Merged results as parallel arrays, by ascending id: the ``unnest`` of the update."""

    ids: list[int]
    statuses: list[str]
    attempts: list[int]
    errors: list[str | None]
    sent_ats: list[datetime | None]
    dispatches: list[int | None]


def columns(merged: dict[int, Result]) -> Columns:
    rows = [merged[message_id] for message_id in sorted(merged)]
    return Columns(
        ids=[r.message_id for r in rows],
        statuses=[r.status.value for r in rows],
        attempts=[r.attempts for r in rows],
        errors=[r.last_error for r in rows],
        sent_ats=[r.sent_at if r.status == MessageStatus.SENT else None for r in rows],
        dispatches=[r.dispatch for r in rows],
    )
