"""The sender's rules (SPEC §4) as pure functions: classification, backoff, the gate."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.sender.logic import (
    Final,
    Gate,
    MessageState,
    Retry,
    RetryPolicy,
    Verdict,
    backoff_s,
    classify,
    gate,
    plan_retry,
    request_timeout_s,
    retry_after_s,
    retry_queue_delay_s,
)
from shared import topology
from shared.messages import Work
from shared.timezones import zone
from shared.windows import Window
from tests.sender.helpers import seeded

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=8, base_s=1.0, max_s=120.0)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, _json({"code": 0, "message": "OK"}), Verdict.SENT),
        (200, _json({"code": 0}), Verdict.SENT),
        (200, _json({"code": "0"}), Verdict.TRANSIENT),
        (200, _json({"code": False}), Verdict.TRANSIENT),
        (200, _json({"code": 0.0}), Verdict.TRANSIENT),
        (200, _json({"code": 1}), Verdict.TRANSIENT),
        (200, _json({}), Verdict.TRANSIENT),
        (200, _json([{"code": 0}]), Verdict.TRANSIENT),
        (200, _json(0), Verdict.TRANSIENT),
        (200, b"<html>OK</html>", Verdict.TRANSIENT),
        (200, b"", Verdict.TRANSIENT),
        (201, _json({"code": 0}), Verdict.TRANSIENT),
        (302, b"", Verdict.TRANSIENT),
        (400, b"", Verdict.FAILED),
        (404, b"", Verdict.FAILED),
        (422, b"", Verdict.FAILED),
        (401, b"", Verdict.UNAUTHORIZED),
        (403, b"", Verdict.UNAUTHORIZED),
        (408, b"", Verdict.TRANSIENT),
        (409, b"", Verdict.TRANSIENT),
        (429, b"", Verdict.TRANSIENT),
        (500, b"", Verdict.TRANSIENT),
        (503, b"", Verdict.TRANSIENT),
    ],
)
def test_classify(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify(status, body, None, NOW).verdict is verdict


def test_classify_names_the_failure() -> None:
    assert classify(503, b"", None, NOW).error == "HTTP 503"
    assert classify(200, b"nope", None, NOW).error == "HTTP 200 with a body that is not JSON"
    assert classify(200, _json({"code": "x" * 500}), None, NOW).error == (
        "HTTP 200 with code " + repr("x" * 500)[:40]
    )


def test_retry_after_is_read_for_429_and_503_only() -> None:
    assert classify(429, b"", "7", NOW).retry_after_s == 7
    assert classify(503, b"", "7", NOW).retry_after_s == 7
    assert classify(500, b"", "7", NOW).retry_after_s is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        (" 3 ", 3.0),
        ("Tue, 01 Jan 2030 12:00:30 GMT", 30.0),
        ("Tue, 01 Jan 2030 11:00:00 GMT", 0.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after_s(header, NOW) == seconds


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 40])
def test_backoff_doubles_with_equal_jitter_up_to_the_cap(attempt: int) -> None:
    step_s = min(POLICY.max_s, 2.0 ** (attempt - 1))
    draws = [backoff_s(attempt, POLICY, seeded(seed)) for seed in range(200)]
    assert all(step_s / 2 <= d <= step_s for d in draws)
    assert max(draws) - min(draws) > step_s / 4  # really jittered


@pytest.mark.parametrize(
    ("delay_s", "queue_s"), [(0.2, 1), (1, 1), (1.9, 1), (2, 2), (4.9, 2), (59, 30), (999, 120)]
)
def test_retry_queue_is_the_longest_not_above_the_delay(delay_s: float, queue_s: int) -> None:
    assert retry_queue_delay_s(delay_s) == queue_s
    assert queue_s in topology.RETRY_DELAYS_S


def _plan(attempt: int, **kwargs: Any) -> Retry | Final:
    options: dict[str, Any] = {
        "counted": True,
        "wait_at_least_s": None,
        "now": NOW,
        "deadline_at": NOW + timedelta(hours=1),
        "policy": POLICY,
        "rng": seeded(1),
        **kwargs,
    }
    return plan_retry(attempt, "HTTP 503", **options)


def test_plan_retry_publishes_the_next_attempt() -> None:
    plan = _plan(3)
    assert isinstance(plan, Retry)
    assert (plan.next_attempt, plan.last_error) == (4, "HTTP 503")
    assert plan.delay_s == 2  # backoff 2-4 s rounds down to the 2 s queue


def test_plan_retry_keeps_the_attempt_when_no_call_was_made() -> None:
    plan = _plan(8, counted=False)
    assert isinstance(plan, Retry)
    assert plan.next_attempt == 8


def test_plan_retry_fails_when_attempts_are_exhausted() -> None:
    assert _plan(8) == Final("failed", "attempts exhausted: HTTP 503")


def test_plan_retry_expires_when_the_wait_would_pass_the_deadline() -> None:
    assert _plan(1, deadline_at=NOW + timedelta(seconds=1)) == Final("expired", "HTTP 503")
    assert isinstance(_plan(1, deadline_at=NOW + timedelta(seconds=1.5)), Retry)


def test_plan_retry_waits_at_least_retry_after_capped() -> None:
    plan = _plan(1, wait_at_least_s=7)
    assert isinstance(plan, Retry)
    assert plan.delay_s == 10  # the shortest queue that waits long enough
    capped = _plan(1, wait_at_least_s=10_000, policy=RetryPolicy(8, 1.0, 30.0))
    assert isinstance(capped, Retry)
    assert capped.delay_s == 30


def _state(message: str = "queued", mailing: str = "running", end_in_s: float = 60) -> MessageState:
    return MessageState(message, mailing, NOW + timedelta(seconds=end_in_s))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, Gate.DELETED),
        (_state(), Gate.SEND),
        (_state(message="pending"), Gate.SEND),
        (_state(mailing="cancelled"), Gate.CANCEL),
        (_state(message="cancelled"), Gate.CANCEL),
        (_state(message="sent"), Gate.ALREADY_FINAL),
        (_state(message="failed"), Gate.ALREADY_FINAL),
        (_state(message="expired", end_in_s=-1), Gate.ALREADY_FINAL),
        (_state(mailing="cancelled", end_in_s=-1), Gate.CANCEL),
        (_state(end_in_s=0), Gate.EXPIRE),
        (_state(end_in_s=-5), Gate.EXPIRE),
    ],
)
def test_gate(state: MessageState | None, expected: Gate) -> None:
    assert gate(state, NOW) is expected


def _copy(dispatch: int, xid: int | None) -> Work:
    return Work(
        message_id=1,
        mailing_id=1,
        client_id=1,
        phone="79001234567",
        text="Hi",
        deadline_at=NOW + timedelta(seconds=60),
        dispatch=dispatch,
        dispatch_xid=xid,
    )


def _dispatched(message: str, xid: int | None, dispatches: int, end_in_s: float = 60) -> Any:
    end_at = NOW + timedelta(seconds=end_in_s)
    return MessageState(message, "running", end_at, dispatch_xid=xid, dispatches=dispatches)


@pytest.mark.parametrize(
    ("state", "copy", "expected"),
    [
        # The copy of the transaction that queued the row.
        (_dispatched("queued", 71, 1), _copy(1, 71), Gate.SEND),
        # Its transaction rolled back and a later one queued the message again.
        (_dispatched("queued", 72, 1), _copy(1, 71), Gate.STALE),
        # Not committed yet (or never will be): looked at again while there is time.
        (_dispatched("pending", None, 0), _copy(1, 71), Gate.UNCOMMITTED),
        (_dispatched("pending", 70, 1), _copy(2, 71), Gate.UNCOMMITTED),
        (_dispatched("pending", None, 0, end_in_s=0), _copy(1, 71), Gate.STALE),
        # Put back to pending (a closed window) after this dispatch, or after a later one.
        (_dispatched("pending", 71, 1), _copy(1, 71), Gate.STALE),
        (_dispatched("pending", 72, 2), _copy(1, 71), Gate.STALE),
        # Final or cancelled rows answer as before, whichever copy asks.
        (_dispatched("sent", 72, 1), _copy(1, 71), Gate.ALREADY_FINAL),
        (_dispatched("cancelled", 72, 1), _copy(1, 71), Gate.CANCEL),
        # A work message from before dispatch_xid existed is not checked.
        (_dispatched("pending", None, 0), _copy(1, None), Gate.SEND),
        # The deadline still speaks for the copy that counts.
        (_dispatched("queued", 71, 1, end_in_s=0), _copy(1, 71), Gate.EXPIRE),
    ],
)
def test_gate_sends_only_the_copy_of_the_committed_dispatch(
    state: MessageState, copy: Work, expected: Gate
) -> None:
    assert gate(state, NOW, copy) is expected


def _windowed(start: str, end: str, end_at: str, timezone: str = "Europe/Berlin") -> MessageState:
    window = Window(
        datetime.strptime(start, "%H:%M").time(), datetime.strptime(end, "%H:%M").time()
    )
    return MessageState("queued", "running", datetime.fromisoformat(end_at), window, zone(timezone))


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        # 10:00 CEST, inside 09:00-21:00.
        (_windowed("09:00", "21:00", "2027-08-01T00:00Z"), "2027-07-01T08:00Z", Gate.SEND),
        # 21:00 CEST: the end is not in the window; it opens again at 07:00Z, before end_at.
        (_windowed("09:00", "21:00", "2027-08-01T00:00Z"), "2027-07-01T19:00Z", Gate.WAIT),
        # The same, but the mailing ends before the next opening.
        (_windowed("09:00", "21:00", "2027-07-02T07:00Z"), "2027-07-01T19:00Z", Gate.WINDOW_MISSED),
        (_windowed("09:00", "21:00", "2027-07-02T07:01Z"), "2027-07-01T19:00Z", Gate.WAIT),
        # Across midnight: 05:30 CET on the night clocks go back is inside 22:00-06:00.
        (_windowed("22:00", "06:00", "2027-11-01T00:00Z"), "2027-10-31T04:30Z", Gate.SEND),
        # 20:59:59.9 CEST: open, but a call leaving now could reach the provider after 21:00.
        (_windowed("09:00", "21:00", "2027-08-01T00:00Z"), "2027-07-01T18:59:59.9Z", Gate.WAIT),
        (_windowed("09:00", "21:00", "2027-08-01T00:00Z"), "2027-07-01T18:59:59.7Z", Gate.SEND),
        # Past end_at, the deadline speaks first, whatever the window.
        (_windowed("09:00", "21:00", "2027-07-01T08:00Z"), "2027-07-01T08:00Z", Gate.EXPIRE),
    ],
)
def test_gate_checks_the_send_window_in_the_clients_zone(
    state: MessageState, now: str, expected: Gate
) -> None:
    assert gate(state, datetime.fromisoformat(now)) is expected


@pytest.mark.parametrize(
    ("left_s", "timeout_s"),
    [(60, 10.0), (10, 10.0), (2.5, 2.5), (0.2, 0.2), (0.1, None), (0, None)],
)
def test_request_timeout_ends_by_the_deadline(left_s: float, timeout_s: float | None) -> None:
    assert request_timeout_s(NOW, NOW + timedelta(seconds=left_s), 10.0) == timeout_s
