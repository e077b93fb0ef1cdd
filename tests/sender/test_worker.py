"""One work message through the sender, with the broker, database and provider faked."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from services.sender.auth import Admission, AuthGate
from services.sender.control import ControlListener
from services.sender.errors import LookupUnavailable
from services.sender.logic import MessageState, Outcome, RetryPolicy, Verdict, classify
from services.sender.worker import Limits, Sender
from shared import topology
from shared.broker import BrokerError
from shared.messages import ControlEvent, Result, ResultBatch, Work
from shared.timezones import zone
from shared.windows import Window
from tests.sender.helpers import seeded

NOW = datetime.now(UTC)
END_AT = NOW + timedelta(hours=1)


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, BaseModel]] = []
        self.failures = 0  # how many of the next publishes fail

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: BaseModel,
        headers: dict[str, Any] | None = None,
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise BrokerError("broker unavailable: test")
        self.published.append((exchange, routing_key, body))

    def results(self) -> list[Result]:
        return [r for _, _, b in self.published if isinstance(b, ResultBatch) for r in b.results]

    def retries(self) -> list[tuple[str, Work]]:
        return [
            (k, b)
            for e, k, b in self.published
            if isinstance(b, Work) and e == topology.RETRY_EXCHANGE
        ]


class FakeLookup:
    """Answers ``state``; a list is answered one item per lookup, the last one from then on."""

    def __init__(self, state: MessageState | Exception | list[MessageState] | None) -> None:
        self.states = state if isinstance(state, list) else [state]
        self.calls = 0

    async def find(self, message_id: int) -> MessageState | None:
        self.calls += 1
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(state, Exception):
            raise state
        return state


class FakeProvider:
    """Answers each call with the next of ``answers``, classified as the real one does; the
    HTTP side of a call is tests/sender/test_provider.py's."""

    def __init__(self, answers: list[httpx.Response]) -> None:
        self.answers = answers
        self.calls: list[tuple[Work, float]] = []

    async def send(self, work: Work, timeout_s: float) -> Outcome:
        self.calls.append((work, timeout_s))
        answer = self.answers.pop(0)
        retry_after = answer.headers.get("Retry-After")
        return classify(answer.status_code, answer.content, retry_after, datetime.now(UTC))


class Harness:
    def __init__(self, answers: list[httpx.Response], state: Any, **limits: Any) -> None:
        self.provider = FakeProvider(answers)
        self.requests = self.provider.calls
        self.publisher = FakePublisher()
        self.lookup = FakeLookup(state)
        self.control = ControlListener()
        self.auth = AuthGate(pause_min_s=0.1, pause_max_s=0.2)
        options = {"request_timeout_s": 5.0, "auth_hold_max_s": 5.0, **limits}
        self.sender = Sender(
            provider=self.provider,
            lookup=self.lookup,  # type: ignore[arg-type]
            auth=self.auth,
            publisher=self.publisher,  # type: ignore[arg-type]
            control=self.control,
            limits=Limits(retry=RetryPolicy(8, 1.0, 120.0), **options),
            rng=seeded(7),
            publish_pauses_s=(0.01,),
            recheck_pauses_s=(0.01, 0.01),
        )


def _work(attempt: int = 1, dispatch: int = 1, dispatch_xid: int | None = None) -> Work:
    return Work(
        message_id=5,
        mailing_id=2,
        client_id=3,
        phone="79001234567",
        text="Hi",
        deadline_at=END_AT,
        attempt=attempt,
        dispatch=dispatch,
        dispatch_xid=dispatch_xid,
    )


def _state(
    message: str = "queued",
    mailing: str = "running",
    end_at: datetime = END_AT,
    *,
    dispatch_xid: int | None = None,
    dispatches: int = 0,
) -> Any:
    return MessageState(message, mailing, end_at, dispatch_xid=dispatch_xid, dispatches=dispatches)


OK = httpx.Response(200, json={"code": 0, "message": "OK"})
UNAVAILABLE = httpx.Response(503)
REFUSED = httpx.Response(401)


def _statuses(h: Harness) -> list[tuple[str, int, str | None]]:
    return [(r.status, r.attempts, r.last_error) for r in h.publisher.results()]


async def test_sent_is_reported_with_its_attempt() -> None:
    h = Harness([OK], _state())
    await h.sender.process(_work(attempt=3))
    assert _statuses(h) == [("sent", 3, None)]
    assert h.publisher.results()[0].sent_at is not None
    assert h.publisher.retries() == []


async def test_transient_reports_progress_then_republishes_the_next_attempt() -> None:
    h = Harness([UNAVAILABLE], _state())
    await h.sender.process(_work(attempt=2))
    assert [e for e, _, _ in h.publisher.published] == [
        topology.RESULTS_EXCHANGE,
        topology.RETRY_EXCHANGE,
    ]
    assert _statuses(h) == [("queued", 2, "HTTP 503")]
    [(routing_key, again)] = h.publisher.retries()
    assert routing_key == "1"  # backoff 1-2 s for attempt 2 rounds down to the 1 s queue
    assert (again.attempt, again.last_error, again.message_id) == (3, "HTTP 503", 5)


async def test_last_attempt_fails_with_the_last_error() -> None:
    h = Harness([UNAVAILABLE], _state())
    await h.sender.process(_work(attempt=8))
    assert _statuses(h) == [("failed", 8, "attempts exhausted: HTTP 503")]
    assert h.publisher.retries() == []


async def test_bad_request_fails_at_once() -> None:
    h = Harness([httpx.Response(422)], _state())
    await h.sender.process(_work())
    assert _statuses(h) == [("failed", 1, "HTTP 422")]


async def test_database_deadline_wins_over_the_work_message() -> None:
    h = Harness([OK], _state(end_at=datetime.now(UTC) + timedelta(seconds=0.1)))
    await h.sender.process(_work(attempt=2))
    assert h.requests == []  # too little time left to start a call
    assert _statuses(h) == [("expired", 1, "deadline passed")]


async def test_database_down_means_no_call_and_a_retry_of_the_same_attempt() -> None:
    h = Harness([OK], LookupUnavailable("database unavailable: OSError"))
    await h.sender.process(_work(attempt=2))
    assert h.requests == []
    [(_, again)] = h.publisher.retries()
    assert (again.attempt, again.last_error) == (2, "database unavailable: OSError")


async def test_a_cancel_heard_on_the_control_fanout_skips_the_lookup() -> None:
    h = Harness([OK], _state())
    h.control.note(ControlEvent(kind="mailing_cancelled", mailing_id=2))
    await h.sender.process(_work())
    assert (h.lookup.calls, h.requests) == (0, [])
    assert _statuses(h) == [("cancelled", 0, None)]


async def test_refused_token_holds_the_message_then_hands_it_back() -> None:
    h = Harness([REFUSED], _state(), auth_hold_max_s=0.05)
    await h.sender.process(_work(attempt=2))
    assert len(h.requests) == 1
    assert h.auth.closed
    [(_, again)] = h.publisher.retries()
    assert (again.attempt, again.last_error) == (2, "provider refused the credentials")
    assert _statuses(h) == [("queued", 1, "provider refused the credentials")]


async def test_refused_token_then_fixed_sends_after_a_fresh_lookup() -> None:
    h = Harness([REFUSED, OK], _state(), auth_hold_max_s=2)
    await h.sender.process(_work())
    assert len(h.requests) == 2
    assert h.lookup.calls == 2  # looked up again after the wait: a cancel meanwhile counts
    assert not h.auth.closed
    assert _statuses(h) == [("sent", 1, None)]


async def test_a_cancel_while_waiting_at_the_closed_gate_is_honoured() -> None:
    h = Harness([OK], _state(mailing="cancelled"))
    h.auth.record(Admission(probe=False), Outcome(Verdict.UNAUTHORIZED, "HTTP 401", 401))
    await h.sender.process(_work())
    assert h.requests == []
    assert _statuses(h) == [("cancelled", 0, None)]
    assert h.auth.retry_in_s() == 0  # the probe it was given is handed to the next message


async def test_unconfirmed_result_is_reported_again_without_a_second_call() -> None:
    h = Harness([OK], _state())
    h.publisher.failures = 2
    with pytest.raises(BrokerError):
        await h.sender.process(_work())  # tried twice, then given up: the handler nacks
    await h.sender.process(_work())  # RabbitMQ delivers the unacked work message again
    assert len(h.requests) == 1
    assert _statuses(h) == [("sent", 1, None)]


async def test_a_publish_is_tried_again_before_giving_up() -> None:
    h = Harness([OK], _state())
    h.publisher.failures = 1
    await h.sender.process(_work())
    assert _statuses(h) == [("sent", 1, None)]


def _closed_window_state(end_at: datetime = END_AT) -> MessageState:
    """A UTC window from an hour from now to two hours from now: closed now."""
    now = datetime.now(UTC)
    opens = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    closes = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    return MessageState("queued", "running", end_at, Window(opens, closes), zone("UTC"))


async def test_outside_the_window_the_message_goes_back_to_pending_without_a_call() -> None:
    h = Harness([OK], _closed_window_state(end_at=datetime.now(UTC) + timedelta(days=2)))
    await h.sender.process(_work(attempt=3, dispatch=2))
    assert h.requests == []
    [back] = h.publisher.results()
    assert (back.status, back.attempts, back.dispatch) == ("pending", 2, 2)
    assert h.publisher.retries() == []  # it waits in the database, not in a retry queue


async def test_outside_a_window_that_opens_only_after_the_deadline_it_expires() -> None:
    h = Harness([OK], _closed_window_state(end_at=datetime.now(UTC) + timedelta(minutes=30)))
    await h.sender.process(_work())
    assert h.requests == []
    assert _statuses(h) == [("expired", 0, "send window does not open before the deadline")]


async def test_a_copy_found_uncommitted_is_sent_once_its_dispatch_commits() -> None:
    uncommitted = _state("pending", dispatch_xid=None, dispatches=0)
    committed = _state("queued", dispatch_xid=71, dispatches=1)
    h = Harness([OK], [uncommitted, uncommitted, committed])
    await h.sender.process(_work(dispatch=1, dispatch_xid=71))
    assert (h.lookup.calls, len(h.requests)) == (3, 1)
    assert _statuses(h) == [("sent", 1, None)]


async def test_a_copy_never_committed_goes_round_the_retry_queue_unreported() -> None:
    h = Harness([OK], _state("pending", dispatch_xid=None, dispatches=0))
    await h.sender.process(_work(attempt=2, dispatch=1, dispatch_xid=71))
    assert h.requests == []
    assert h.lookup.calls == 3  # the first look and one after each of the two pauses
    assert h.publisher.results() == []  # the row is not this copy's to report on
    [(routing_key, again)] = h.publisher.retries()
    assert (routing_key, again) == (str(min(topology.RETRY_DELAYS_S)), _work(2, 1, 71))


@pytest.mark.parametrize(
    "state",
    [
        _state("queued", dispatch_xid=72, dispatches=1),  # another transaction's dispatch
        _state("pending", dispatch_xid=71, dispatches=1),  # put back after this dispatch
        _state("pending", dispatch_xid=72, dispatches=2),  # put back after a later one
    ],
)
async def test_a_stale_copy_is_dropped_without_a_call_or_a_report(state: MessageState) -> None:
    h = Harness([OK], state)
    await h.sender.process(_work(dispatch=1, dispatch_xid=71))
    assert (h.lookup.calls, h.requests, h.publisher.published) == (1, [], [])
