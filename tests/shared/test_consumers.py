"""The rule that tells a lost consumer from an idle or a busy one (issue 6)."""

import pytest

from shared.consumers import QueueState, consumer_lost

STALL_S = 10.0


def state(
    *, ready: int = 0, consumers: int = 1, in_flight: int = 0, prefetch: int = 10, idle_s: float
) -> QueueState:
    return QueueState(
        ready=ready, consumers=consumers, in_flight=in_flight, prefetch=prefetch, idle_s=idle_s
    )


@pytest.mark.parametrize(
    "looked_at",
    [
        # Nothing waiting, nothing delivered for an hour: a quiet queue (a closed send window).
        state(ready=0, idle_s=3600),
        # Messages wait, but every slot of the prefetch is taken (a slow or refusing provider).
        state(ready=500, in_flight=10, idle_s=3600),
        # Messages wait and there is room, but the last delivery is recent.
        state(ready=500, in_flight=3, idle_s=0.5),
        # Right at the threshold is not past it.
        state(ready=500, in_flight=0, idle_s=STALL_S),
    ],
    ids=["idle", "prefetch-full", "recent-delivery", "at-threshold"],
)
def test_a_consumer_that_is_idle_or_busy_is_not_lost(looked_at: QueueState) -> None:
    assert consumer_lost(looked_at, STALL_S) is None


def test_messages_waiting_with_room_and_no_delivery_for_too_long_mean_a_lost_consumer() -> None:
    reason = consumer_lost(state(ready=42, in_flight=3, idle_s=25), STALL_S)

    assert reason == "no delivery for 25 s while 42 messages wait and 3 of 10 are in flight"


def test_no_consumer_on_the_queue_is_lost_even_when_it_is_empty() -> None:
    # The broker's count covers every process: zero means this one does not consume either.
    reason = consumer_lost(state(ready=0, consumers=0, idle_s=0.1), STALL_S)

    assert reason == "the broker counts no consumer on the queue"
