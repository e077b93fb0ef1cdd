"""What a sender does with one work message: check it, call the provider, report the outcome.

:meth:`Sender.process` returns only once everything it published is confirmed, so the caller
acks the work message after it; if it raises, nothing is acked and RabbitMQ delivers again.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from pydantic import BaseModel

from services.sender.auth import AuthGate
from services.sender.control import ControlListener
from services.sender.errors import LookupUnavailable
from services.sender.logic import (
    Final,
    Gate,
    MessageState,
    Outcome,
    RetryPolicy,
    Verdict,
    gate,
    plan_retry,
    request_timeout_s,
)
from services.sender.lookup import MessageLookup
from services.sender.provider import Calls
from services.sender.reports import Reports
from shared import topology
from shared.broker import BrokerError, Publisher
from shared.logs import get_logger
from shared.messages import Result, Work
from shared.statuses import MESSAGE_FINAL, MessageStatus
from shared.windows import WINDOW_NEVER_OPENS

log = get_logger(__name__)

# Final results whose publish failed, kept to report again (without a second provider call)
# when RabbitMQ redelivers their work message to this replica.
_UNREPORTED_KEPT = 10_000
_FINAL_EVENTS = {
    MessageStatus.SENT: "attempt.sent",
    MessageStatus.FAILED: "attempt.failed",
    MessageStatus.EXPIRED: "message.expired",
    MessageStatus.CANCELLED: "message.cancelled",
}
_REFUSED = "provider refused the credentials"
# Pauses between tries of a publish RabbitMQ did not confirm (a connection being recovered).
# Bounded and short: past them the work message is nacked and delivered again, and each
# redelivery counts toward the work queue's delivery limit.
PUBLISH_PAUSES_S = (0.5, 1.0, 2.0)
# Pauses between looks at a message whose dispatch has not committed. The planner commits right
# after its batch's publishes are confirmed, so a sender quick to take the first messages of a
# batch usually finds the commit done by the first look again; one still uncommitted after all
# of them (the planner's database restarting) goes through the shortest retry queue.
RECHECK_PAUSES_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Limits:
    request_timeout_s: float
    auth_hold_max_s: float
    retry: RetryPolicy


class Sender:
    def __init__(
        self,
        *,
        provider: Calls,
        lookup: MessageLookup,
        auth: AuthGate,
        publisher: Publisher,
        control: ControlListener,
        limits: Limits,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        publish_pauses_s: tuple[float, ...] = PUBLISH_PAUSES_S,
        recheck_pauses_s: tuple[float, ...] = RECHECK_PAUSES_S,
    ) -> None:
        self._provider = provider
        self._lookup = lookup
        self._auth = auth
        self._publisher = publisher
        # Results go out in batches; retries, rare and each due at its own delay, one by one.
        self._reports = Reports(publisher)
        self._control = control
        self._limits = limits
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._publish_pauses_s = publish_pauses_s
        self._recheck_pauses_s = recheck_pauses_s
        self._unreported: dict[int, Result] = {}

    async def close(self, timeout_s: float) -> None:
        """Send the results still on their way, for at most ``timeout_s``."""
        await self._reports.aclose(timeout_s)

    async def process(self, work: Work) -> None:
        """Take one work message to its next step: a final result, or a retry."""
        unreported = self._unreported.pop(work.message_id, None)
        if unreported is not None:
            await self._report(unreported)
            return
        hold_until = time.monotonic() + self._limits.auth_hold_max_s
        deadline_at = work.deadline_at
        while True:
            left_s = (deadline_at - self._clock()).total_seconds()
            admission = await self._auth.admit(min(hold_until - time.monotonic(), left_s))
            # Checked after any wait at the auth gate, so a cancel meanwhile counts too.
            checked = await self._check(work)
            if checked is None:
                if admission is not None:
                    self._auth.record(admission, None)
                return
            deadline_at = checked
            if admission is None:
                await self._hold_over(work, deadline_at)
                return
            outcome, duration_ms = await self._call(work, deadline_at)
            self._auth.record(admission, outcome)
            if outcome is None or outcome.verdict is not Verdict.UNAUTHORIZED:
                await self._settle(work, outcome, deadline_at, duration_ms)
                return
            # Refused for our token: wait at the gate again, then check the message afresh.

    async def _hold_over(self, work: Work, deadline_at: datetime) -> None:
        """Held at the closed gate long enough: back to the broker, due after the next probe,
        so that no delivery stays unacked for long (RabbitMQ's consumer timeout)."""
        await self._retry(
            work, _REFUSED, deadline_at, counted=False, wait_at_least_s=self._auth.retry_in_s()
        )

    async def _check(self, work: Work) -> datetime | None:
        """The deadline if the message may be sent now; else report why not and return None."""
        verdict = self._control.stopped(work.mailing_id)
        if verdict is None:
            try:
                state, verdict = await self._look_up(work)
            except LookupUnavailable as exc:
                # Without the database we cannot know of a cancel: do not call blindly.
                await self._retry(work, str(exc), work.deadline_at, counted=False)
                return None
            if verdict is Gate.SEND and state is not None:
                return state.end_at
        if verdict is Gate.CANCEL:
            await self._finish(work, MessageStatus.CANCELLED, None, work.attempt - 1)
        elif verdict is Gate.EXPIRE:
            await self._finish(work, MessageStatus.EXPIRED, "deadline passed", work.attempt - 1)
        elif verdict is Gate.WINDOW_MISSED:
            await self._finish(work, MessageStatus.EXPIRED, WINDOW_NEVER_OPENS, work.attempt - 1)
        elif verdict is Gate.WAIT:
            await self._wait_for_window(work)
        elif verdict is Gate.UNCOMMITTED:
            await self._look_later(work)
        else:
            # Deleted (nothing left to report on), already final (reported before), or a
            # stale copy (another dispatch's copy is the one sent).
            log.info("message.skipped", reason=verdict.value, dispatch=work.dispatch)
        return None

    async def _look_up(self, work: Work) -> tuple[MessageState | None, Gate]:
        """The message's state and what it allows; while the dispatch of this copy has not
        committed, looked up again after each of the recheck pauses."""
        state = await self._lookup.find(work.message_id)
        verdict = gate(state, self._clock(), work)
        for pause_s in self._recheck_pauses_s:
            if verdict is not Gate.UNCOMMITTED:
                break
            await asyncio.sleep(pause_s)
            state = await self._lookup.find(work.message_id)
            verdict = gate(state, self._clock(), work)
        return state, verdict

    async def _look_later(self, work: Work) -> None:
        """Through the shortest retry queue, unchanged: the planner's commit is late, or it
        failed and the message will be dispatched anew (and this copy then found stale).

        No progress result: the row is not this copy's to report on until it commits.
        """
        delay_s = min(topology.RETRY_DELAYS_S)
        await self._publish(topology.RETRY_EXCHANGE, str(delay_s), work)
        log.warning("message.uncommitted", dispatch=work.dispatch, delay_s=delay_s)

    async def _wait_for_window(self, work: Work) -> None:
        """Back to ``pending``: the planner queues it again when the window next opens.

        It waits in the database, not in a retry queue: a closed window may stay closed for
        most of a day, and the planner already knows when each zone opens.
        """
        back = Result(
            message_id=work.message_id,
            status=MessageStatus.PENDING,
            attempts=work.attempt - 1,
            dispatch=work.dispatch,
        )
        await self._report(back)
        log.info("message.waiting", attempt=work.attempt, reason="outside the send window")

    async def _call(self, work: Work, deadline_at: datetime) -> tuple[Outcome | None, int]:
        timeout_s = request_timeout_s(self._clock(), deadline_at, self._limits.request_timeout_s)
        if timeout_s is None:
            return None, 0
        started = time.monotonic()
        outcome = await self._provider.send(work, timeout_s)
        return outcome, round((time.monotonic() - started) * 1000)

    async def _settle(
        self, work: Work, outcome: Outcome | None, deadline_at: datetime, duration_ms: int
    ) -> None:
        if outcome is None:
            await self._finish(work, MessageStatus.EXPIRED, "deadline passed", work.attempt - 1)
        elif outcome.verdict is Verdict.SENT:
            await self._finish(work, MessageStatus.SENT, None, work.attempt, duration_ms)
        elif outcome.verdict is Verdict.FAILED:
            await self._finish(work, MessageStatus.FAILED, outcome.error, work.attempt, duration_ms)
        else:
            error = outcome.error or outcome.verdict.value
            await self._retry(
                work, error, deadline_at, counted=True, wait_at_least_s=outcome.retry_after_s
            )

    async def _retry(
        self,
        work: Work,
        error: str,
        deadline_at: datetime,
        *,
        counted: bool,
        wait_at_least_s: float | None = None,
    ) -> None:
        """Through a retry queue, or a final result when the attempts or the time ran out."""
        plan = plan_retry(
            work.attempt,
            error,
            counted=counted,
            wait_at_least_s=wait_at_least_s,
            now=self._clock(),
            deadline_at=deadline_at,
            policy=self._limits.retry,
            rng=self._rng,
        )
        calls_made = work.attempt if counted else work.attempt - 1
        if isinstance(plan, Final):
            await self._finish(work, plan.status, plan.last_error, calls_made)
            return
        # The progress result first: if the retry publish then fails, the work message is
        # delivered again and there is still only one copy of it in the broker.
        progress = Result(
            message_id=work.message_id,
            status=MessageStatus.QUEUED,
            attempts=calls_made,
            last_error=error,
        )
        await self._report(progress)
        again = work.model_copy(
            update={"attempt": plan.next_attempt, "last_error": error, "deadline_at": deadline_at}
        )
        await self._publish(topology.RETRY_EXCHANGE, str(plan.delay_s), again)
        log.warning("attempt.retry", attempt=work.attempt, delay_s=plan.delay_s, error=error)

    async def _finish(
        self,
        work: Work,
        status: MessageStatus,
        error: str | None,
        calls_made: int,
        duration_ms: int | None = None,
    ) -> None:
        sent_at = self._clock() if status is MessageStatus.SENT else None
        result = Result(
            message_id=work.message_id,
            status=status,
            attempts=calls_made,
            last_error=error,
            sent_at=sent_at,
        )
        await self._report(result)
        level = log.info if status in (MessageStatus.SENT, MessageStatus.CANCELLED) else log.warning
        fields = {"attempt": work.attempt, "error": error, "duration_ms": duration_ms}
        level(_FINAL_EVENTS[status], **{k: v for k, v in fields.items() if v is not None})

    async def _report(self, result: Result) -> None:
        try:
            await self._confirmed(topology.RESULTS_EXCHANGE, partial(self._reports.report, result))
        except BrokerError:
            if result.status in MESSAGE_FINAL:
                if len(self._unreported) >= _UNREPORTED_KEPT:
                    del self._unreported[next(iter(self._unreported))]
                self._unreported[result.message_id] = result
            raise

    async def _publish(self, exchange: str, routing_key: str, body: BaseModel) -> None:
        await self._confirmed(
            exchange, partial(self._publisher.publish, exchange, routing_key, body)
        )

    async def _confirmed(self, exchange: str, publish: Callable[[], Awaitable[None]]) -> None:
        """``publish()``, tried again after each of the publish pauses while not confirmed."""
        for pause_s in self._publish_pauses_s:
            try:
                await publish()
            except BrokerError as exc:
                log.warning("publish.retry", exchange=exchange, error=str(exc), pause_s=pause_s)
                await asyncio.sleep(pause_s)
            else:
                return
        await publish()
