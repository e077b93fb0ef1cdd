"""The auth gate: one refusal stops every call; a single probe per pause decides to resume."""

import asyncio

from services.sender.auth import Admission, AuthGate
from services.sender.logic import Outcome, Verdict

REFUSED = Outcome(Verdict.UNAUTHORIZED, "HTTP 401", 401)
SENT = Outcome(Verdict.SENT, status_code=200)
UNAVAILABLE = Outcome(Verdict.TRANSIENT, "HTTP 503", 503)
CALL = Admission(probe=False)


def _gate() -> AuthGate:
    return AuthGate(pause_min_s=0.2, pause_max_s=0.5)


async def test_open_gate_admits_at_once() -> None:
    gate = _gate()
    assert await gate.admit(timeout_s=0) == CALL
    gate.record(CALL, UNAVAILABLE)
    assert not gate.closed


async def test_refusal_closes_the_gate_and_waiters_give_up_in_time() -> None:
    gate = _gate()
    gate.record(CALL, REFUSED)
    assert gate.closed
    started = asyncio.get_running_loop().time()
    assert await gate.admit(timeout_s=0.05) is None
    assert 0.04 < asyncio.get_running_loop().time() - started < 0.2


async def test_after_the_pause_one_probe_and_its_success_opens_for_all() -> None:
    gate = _gate()
    gate.record(CALL, REFUSED)
    waiters = [asyncio.create_task(gate.admit(timeout_s=2)) for _ in range(5)]
    await asyncio.sleep(0.3)
    probes = [w.result() for w in waiters if w.done()]
    assert probes == [Admission(probe=True)]  # one, while the others still wait

    gate.record(probes[0], SENT)
    admitted = await asyncio.gather(*waiters)
    assert not gate.closed
    assert admitted.count(CALL) == 4


async def test_a_refused_probe_doubles_the_pause_up_to_the_max() -> None:
    gate = _gate()
    gate.record(CALL, REFUSED)
    probe = await gate.admit(timeout_s=1)
    assert probe == Admission(probe=True)
    gate.record(probe, REFUSED)
    assert 0.35 < gate.retry_in_s() <= 0.4
    probe = await gate.admit(timeout_s=1)
    gate.record(probe, REFUSED)
    assert 0.45 < gate.retry_in_s() <= 0.5  # capped at pause_max_s


async def test_late_refusals_of_calls_already_in_flight_do_not_extend_the_pause() -> None:
    gate = _gate()
    gate.record(CALL, REFUSED)
    gate.record(CALL, REFUSED)
    gate.record(CALL, REFUSED)
    assert gate.retry_in_s() <= 0.2


async def test_an_inconclusive_probe_lets_another_probe_later() -> None:
    gate = _gate()
    gate.record(CALL, REFUSED)
    probe = await gate.admit(timeout_s=1)
    gate.record(probe, UNAVAILABLE)
    assert gate.closed
    assert await gate.admit(timeout_s=1) == Admission(probe=True)


async def test_a_probe_not_made_hands_over_at_once() -> None:
    gate = _gate()
    gate.record(CALL, REFUSED)
    probe = await gate.admit(timeout_s=1)
    gate.record(probe, None)
    assert gate.retry_in_s() == 0


async def test_stop_releases_the_waiters() -> None:
    gate = _gate()
    gate.record(CALL, REFUSED)
    waiter = asyncio.create_task(gate.admit(timeout_s=30))
    await asyncio.sleep(0.01)
    gate.stop()
    assert await asyncio.wait_for(waiter, 1) is None
