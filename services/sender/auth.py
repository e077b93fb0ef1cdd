"""One gate for all of a sender's calls, closed while the provider refuses its token.

A 401/403 is not a message's fault: every other message would get the same answer. So the
first one closes the gate and logs one error; handlers then wait at the gate (each for a
bounded time) instead of calling. After a pause, a single admitted call is the probe: an
answer that shows the token works opens the gate for everyone; another refusal doubles the
pause, up to a maximum. Nothing else calls the provider meanwhile.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.sender.logic import Outcome, Verdict, proves_credentials
from shared.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Admission:
    """Leave to call the provider once; ``probe`` when the gate is closed and this call tests
    whether the token works again."""

    probe: bool


_OPEN = Admission(probe=False)


class AuthGate:
    def __init__(
        self,
        *,
        pause_min_s: float,
        pause_max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pause_min_s = pause_min_s
        self._pause_max_s = pause_max_s
        self._clock = clock
        self._closed = False
        self._pause_s = pause_min_s
        self._probe_at = 0.0
        self._probing = False
        self._stopping = False
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    async def admit(self, timeout_s: float) -> Admission | None:
        """Leave to call, at once while the gate is open; None after ``timeout_s`` of waiting,
        or at once when the sender is stopping."""
        give_up_at = self._clock() + timeout_s
        while self._closed and not self._stopping:
            now = self._clock()
            if not self._probing and now >= self._probe_at:
                self._probing = True
                return Admission(probe=True)
            if now >= give_up_at:
                return None
            wake_at = give_up_at if self._probing else min(give_up_at, self._probe_at)
            await self._wait_for_change(wake_at - now)
        return None if self._closed else _OPEN

    def record(self, admission: Admission, outcome: Outcome | None) -> None:
        """What the admitted call got; None when it was not made after all."""
        status_code = outcome.status_code if outcome else None
        if outcome is not None and outcome.verdict is Verdict.UNAUTHORIZED:
            self._refused(admission, status_code)
        elif proves_credentials(status_code):
            self._accepted()
        elif admission.probe:
            # No call, or no telling answer (timeout, 5xx): let the next one probe; at once
            # when no call was made, else after the same pause.
            self._rearm(0.0 if outcome is None else self._pause_s)

    def retry_in_s(self) -> float:
        """Seconds until the next probe may start."""
        return max(0.0, self._probe_at - self._clock())

    def stop(self) -> None:
        """Release every waiting handler (with None): the sender is shutting down."""
        self._stopping = True
        self._notify()

    def _refused(self, admission: Admission, status_code: int | None) -> None:
        if not self._closed:
            self._closed, self._pause_s = True, self._pause_min_s
            log.error("provider.unauthorized", status_code=status_code, pause_s=self._pause_s)
        elif admission.probe:
            self._pause_s = min(self._pause_s * 2, self._pause_max_s)
            log.warning("provider.probe_refused", status_code=status_code, pause_s=self._pause_s)
        else:
            return  # a call that started before the gate closed: the pause already runs
        self._rearm(self._pause_s)

    def _accepted(self) -> None:
        if self._closed:
            self._closed, self._probing, self._pause_s = False, False, self._pause_min_s
            log.info("provider.authorized")
            self._notify()

    def _rearm(self, pause_s: float) -> None:
        self._probing = False
        self._probe_at = self._clock() + pause_s
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, timeout_s: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await changed.wait()
