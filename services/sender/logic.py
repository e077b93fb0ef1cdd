"""The sender's decisions as pure functions: what an answer means, when to retry, whether to send.

Nothing here does I/O or reads the clock: the caller passes ``now`` (and a random generator for
jitter), so every rule of SPEC §4 is tested in microseconds.
"""

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from shared import topology
from shared.messages import Work
from shared.statuses import MESSAGE_FINAL, MailingStatus, MessageStatus
from shared.windows import Window, is_open, next_opening

# A call with less time than this left before the deadline is not started: it could not be
# answered in time, and a request leaving now may reach the provider after end_at.
MIN_REQUEST_S = 0.2

_FAILED_AT_ONCE = frozenset({400, 404, 422})
_UNAUTHORIZED = frozenset({401, 403})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# How much of a provider's odd ``code`` goes into last_error (it is the provider's text).
_CODE_SHOWN_CHARS = 40


class Verdict(StrEnum):
    SENT = "sent"
    """HTTP 200 with a JSON object whose ``code`` is the integer 0."""
    TRANSIENT = "transient"
    """Worth another try later, with the same msgId."""
    FAILED = "failed"
    """Refused for good (400, 404, 422)."""
    UNAUTHORIZED = "unauthorized"
    """The provider refused our token (401, 403): not this message's fault."""


@dataclass(frozen=True)
class Outcome:
    """What one provider call came to."""

    verdict: Verdict
    error: str | None = None
    status_code: int | None = None
    retry_after_s: float | None = None


def classify(status_code: int, body: bytes, retry_after: str | None, now: datetime) -> Outcome:
    """The meaning of a provider answer (SPEC §4); ``retry_after`` is the header, if any."""
    if status_code == 200:
        return _classify_ok(body)
    if status_code in _FAILED_AT_ONCE:
        return Outcome(Verdict.FAILED, f"HTTP {status_code}", status_code)
    if status_code in _UNAUTHORIZED:
        return Outcome(Verdict.UNAUTHORIZED, f"HTTP {status_code}", status_code)
    wait_s = retry_after_s(retry_after, now) if status_code in _RETRY_AFTER_STATUSES else None
    # 5xx, 408, 429 and anything unexpected (3xx, 201, ...): the provider may accept it later.
    return Outcome(Verdict.TRANSIENT, f"HTTP {status_code}", status_code, wait_s)


def _classify_ok(body: bytes) -> Outcome:
    try:
        answer = json.loads(body)
    except ValueError:
        return Outcome(Verdict.TRANSIENT, "HTTP 200 with a body that is not JSON", 200)
    if not isinstance(answer, dict):
        return Outcome(Verdict.TRANSIENT, "HTTP 200 with JSON that is not an object", 200)
    code = answer.get("code")
    # ``type(...) is int``: JSON true is a bool (an int subclass) and "0" is a string; neither
    # is the integer 0 the contract names.
    if type(code) is int and code == 0:
        return Outcome(Verdict.SENT, status_code=200)
    shown = repr(code)[:_CODE_SHOWN_CHARS]
    return Outcome(Verdict.TRANSIENT, f"HTTP 200 with code {shown}", 200)


def transport_failure(exc: BaseException, timeout_s: float) -> Outcome:
    """A call that got no answer. Transient, and never proof that nothing was delivered."""
    if isinstance(exc, TimeoutError):
        return Outcome(Verdict.TRANSIENT, f"no answer within {timeout_s:.1f} s")
    # The class name only: an exception's text may quote the request.
    return Outcome(Verdict.TRANSIENT, f"transport error: {type(exc).__name__}")


def proves_credentials(status_code: int | None) -> bool:
    """True for answers a provider gives only once it has accepted the token."""
    return status_code == 200 or status_code in _FAILED_AT_ONCE


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds from now: delay-seconds or an HTTP date; None if unusable."""
    if value is None or not (value := value.strip()):
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float


def backoff_s(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half drawn at random."""
    step_s = min(policy.max_s, policy.base_s * 2.0 ** min(attempt - 1, 32))
    return step_s / 2 + rng.uniform(0, step_s / 2)


def retry_queue_delay_s(delay_s: float) -> int:
    """The longest retry queue not above ``delay_s``, at least the shortest there is."""
    fitting = [d for d in topology.RETRY_DELAYS_S if d <= delay_s]
    return max(fitting) if fitting else min(topology.RETRY_DELAYS_S)


def _queue_at_least_s(delay_s: float) -> int:
    # For Retry-After: waiting less than the provider asked would only earn another 429.
    longer = [d for d in topology.RETRY_DELAYS_S if d >= delay_s]
    return min(longer) if longer else max(topology.RETRY_DELAYS_S)


@dataclass(frozen=True)
class Retry:
    """Publish the work again through the retry queue of ``delay_s``."""

    delay_s: int
    next_attempt: int
    last_error: str


@dataclass(frozen=True)
class Final:
    """Report this final status instead of retrying."""

    status: MessageStatus
    last_error: str | None


def plan_retry(
    attempt: int,
    error: str,
    *,
    counted: bool,
    wait_at_least_s: float | None,
    now: datetime,
    deadline_at: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> Retry | Final:
    """After a transient failure of ``attempt``: when to try again, or how the message ends.

    ``counted`` is False when no provider call was made (database down, token refused): the
    next try keeps the attempt number. ``wait_at_least_s`` is a Retry-After or the auth pause.
    """
    if counted and attempt >= policy.max_attempts:
        return Final(MessageStatus.FAILED, f"attempts exhausted: {error}")
    delay_s = retry_queue_delay_s(backoff_s(attempt, policy, rng))
    if wait_at_least_s is not None:
        delay_s = max(delay_s, _queue_at_least_s(min(wait_at_least_s, policy.max_s)))
    if now + timedelta(seconds=delay_s) >= deadline_at:
        return Final(MessageStatus.EXPIRED, error)
    return Retry(delay_s, attempt + 1 if counted else attempt, error)


class Gate(StrEnum):
    SEND = "send"
    DELETED = "deleted"
    """The message (or its mailing) no longer exists: nothing to send or to report."""
    ALREADY_FINAL = "already_final"
    CANCEL = "cancel"
    EXPIRE = "expire"
    WAIT = "wait"
    """Outside the client's send window: back to ``pending`` until the planner's next opening."""
    WINDOW_MISSED = "window_missed"
    """Outside the window, and it opens again only at or after the deadline: expire."""
    STALE = "stale"
    """Another dispatch of the message is the one that counts: this copy is dropped."""
    UNCOMMITTED = "uncommitted"
    """The message is still ``pending``: the transaction that published this copy has not
    committed yet, or never will. Look again shortly."""


@dataclass(frozen=True)
class MessageState:
    """What the database says about a message just before its provider call."""

    message_status: str
    mailing_status: str
    end_at: datetime
    window: Window | None = None
    zone: ZoneInfo | None = None
    """The client's time zone, where the mailing has a window."""
    dispatch_xid: int | None = None
    """The planner transaction that queued the message, once it committed."""
    dispatches: int = 0
    """How many of the planner's dispatches of the message committed."""


def gate(state: MessageState | None, now: datetime, copy: Work | None = None) -> Gate:
    """Whether a message may be sent now, read from the database, not from the work message.

    ``copy`` is the work message, to tell which dispatch it comes from. A planner whose commit
    failed after its publishes (a database restart) leaves copies out whose row stayed
    ``pending``; the next dispatch publishes the message again. Both copies would pass a check
    of the status alone, so only the one whose transaction the row names is sent.

    The window is checked here, just before the call, because a work message may have waited
    in the broker (a retry, a backlog, a sender down) past its window's close.
    """
    if state is None:
        return Gate.DELETED
    cancelled = MessageStatus.CANCELLED.value
    if state.message_status == cancelled or state.mailing_status == MailingStatus.CANCELLED:
        return Gate.CANCEL
    if state.message_status in MESSAGE_FINAL:
        return Gate.ALREADY_FINAL
    if copy is not None and copy.dispatch_xid is not None:
        other = _another_copy_counts(state, now, copy)
        if other is not None:
            return other
    if now >= state.end_at:
        return Gate.EXPIRE
    window, zone = state.window, state.zone
    if window is None or zone is None:
        return Gate.SEND
    # Open now and still open when the call leaves: one passed at 20:59:59.99 would reach the
    # provider after a 21:00 close. Windows are whole minutes, so nothing opens and closes
    # again in between.
    leaves_at = now + timedelta(seconds=MIN_REQUEST_S)
    if is_open(window, zone, now) and is_open(window, zone, leaves_at):
        return Gate.SEND
    opening = next_opening(window, zone, leaves_at)
    return Gate.WAIT if opening < state.end_at else Gate.WINDOW_MISSED


def _another_copy_counts(state: MessageState, now: datetime, copy: Work) -> Gate | None:
    """None if ``copy`` is the one the row names; else whether it may still come to count."""
    if state.message_status == MessageStatus.QUEUED and state.dispatch_xid == copy.dispatch_xid:
        return None
    if (
        state.message_status == MessageStatus.PENDING
        and state.dispatches < copy.dispatch
        and now < state.end_at
    ):
        # No dispatch as late as this copy's has committed: its transaction may still commit,
        # which is worth waiting for only while there is time.
        return Gate.UNCOMMITTED
    # Queued by another transaction, or put back to pending after this copy's dispatch or a
    # later one (a closed window): that other copy is sent, or is waited for in the database.
    return Gate.STALE


def request_timeout_s(now: datetime, deadline_at: datetime, cap_s: float) -> float | None:
    """The time one call may take: the cap, or less near the deadline; None: do not call."""
    left_s = (deadline_at - now).total_seconds()
    if left_s < MIN_REQUEST_S:
        return None
    return min(cap_s, left_s)
