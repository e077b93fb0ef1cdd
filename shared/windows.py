"""The send-window rule: a window is open while the client's local wall clock reads a time in it.

A window ``[start, end)`` is in the client's wall-clock time and wraps past midnight when
``start`` is after ``end``. The rule is about what the wall clock reads at each instant, so it
stays exact across clock changes:

- a wall time skipped by a spring-forward gap is never read, so it never opens a window;
- a wall time repeated in a fall-back fold is read twice, so a window is open on both passes;
- a clock change can itself open or close a window: New York's 02:15-03:30 window opens at
  the spring-forward instant, when the clock jumps from 01:59:59 EST to 03:00 EDT.

Pure: no I/O and no clock reading. Callers pass the instant; results are in UTC. Compare them
in UTC too: ``==`` between datetimes of two zones is False whenever one of them reads a time in
a fold (PEP 495), even for the same instant.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import chain
from zoneinfo import ZoneInfo

from shared.errors import SharedError

# How far ahead of ``at`` the searches look. A window of at least a minute opens and closes on
# every local day except one a clock change swallows whole (Samoa skipped 2011-12-30), so two
# days would do; eight leave room for rules stranger than any in tzdata.
_HORIZON = timedelta(days=8)
# zoneinfo publishes no list of transitions, so offset changes are found by sampling the offset
# this often and bisecting where it differs. Consecutive offset changes in tzdata are never
# less than seven days apart, so no two can hide between samples and cancel out.
_SAMPLE_S = 3 * 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

WINDOW_NEVER_OPENS = "send window does not open before the deadline"
"""``last_error`` of a message expired because its window opens only at or after ``end_at``."""


class WindowSearchError(SharedError, ValueError):
    """The window did not open (or close) within the search horizon: the zone's rules are odd."""


@dataclass(frozen=True)
class Window:
    """A daily send window ``[start, end)`` in the client's local wall-clock time.

    ``start`` after ``end`` wraps past midnight (21:00-09:00 is open overnight).
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            if bound.tzinfo is not None:
                raise ValueError("a window bound is a wall-clock time: it takes no time zone")
            if bound.second or bound.microsecond:
                raise ValueError("a window bound must be a whole minute (HH:MM)")
        if self.start == self.end:
            raise ValueError("a window's end must differ from its start (0 or 24 h is ambiguous)")

    def contains(self, wall: time) -> bool:
        """True when the wall-clock time ``wall`` lies in ``[start, end)``, wrapping at midnight."""
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


def is_open(window: Window, zone: ZoneInfo, at: datetime) -> bool:
    """True when the wall clock in ``zone`` reads a time inside ``window`` at the instant ``at``.

    ``at`` must be timezone-aware: a naive value names no instant.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware, e.g. datetime.now(UTC)")
    # astimezone resolves a fold by itself: an instant in the repeated hour gets fold=1 on its
    # second pass, and both passes read the same wall-clock time, as the rule wants.
    return window.contains(at.astimezone(zone).time())


def next_opening(window: Window, zone: ZoneInfo, at: datetime) -> datetime:
    """``at`` when the window is open then, else the first later instant it is open; in UTC.

    Raises :class:`WindowSearchError` when no opening lies within eight days of ``at``.
    """
    if is_open(window, zone, at):
        return at.astimezone(UTC)
    opening = _first_edge(zone, at, window.start, lambda instant: is_open(window, zone, instant))
    if opening is None:
        raise WindowSearchError("the window never opens within 8 days in zone " + zone.key)
    return opening


def next_closing(window: Window, zone: ZoneInfo, at: datetime) -> datetime:
    """``at`` when the window is closed then, else the first later instant it is closed; in UTC.

    Raises :class:`WindowSearchError` when no closing lies within eight days of ``at``.
    """
    if not is_open(window, zone, at):
        return at.astimezone(UTC)
    closing = _first_edge(zone, at, window.end, lambda instant: not is_open(window, zone, instant))
    if closing is None:
        raise WindowSearchError("the window never closes within 8 days in zone " + zone.key)
    return closing


def _first_edge(
    zone: ZoneInfo, at: datetime, bound: time, reached: Callable[[datetime], bool]
) -> datetime | None:
    """The earliest instant after ``at`` where ``reached`` holds, if within the horizon.

    Between offset changes the wall clock runs continuously, and ``[start, end)`` is entered
    exactly when it reads ``start`` and left exactly when it reads ``end``. So the state can only
    change at an instant the clock reads ``bound`` or at an offset change (a jump of the clock
    into or out of the window): the first such instant where ``reached`` holds is the answer.
    """
    at = at.astimezone(UTC)
    until = at + _HORIZON
    edges = chain(_instants_reading(zone, bound, at), _offset_changes(zone, at, until))
    for edge in sorted(edge for edge in edges if at < edge <= until):
        if reached(edge):
            return edge
    return None


def _instants_reading(zone: ZoneInfo, wall: time, at: datetime) -> Iterator[datetime]:
    """The instants (UTC) around ``at`` and up to the horizon at which the clock reads ``wall``.

    One a day as a rule, two when ``wall`` falls in a fold, none when it falls in a gap.
    """
    # A day early, and one more: after a backward jump an instant later than ``at`` can still
    # fall on an earlier local date (a fold across midnight, or a zone that repeated a day).
    first = at.astimezone(zone).date() - timedelta(days=2)
    for day in range(_HORIZON.days + 4):
        local = datetime.combine(first + timedelta(days=day), wall, tzinfo=zone)
        for fold in (0, 1):
            instant = local.replace(fold=fold).astimezone(UTC)
            # zoneinfo maps a wall time in a gap to some instant all the same (02:30 with fold=0
            # takes the offset before the change: 02:30 EST, which the clock showed as 03:30
            # EDT). Only a round trip back to the same wall time shows the clock read it. Such
            # an instant would do no harm (every edge is checked), but it is no edge either.
            if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
                yield instant


def _offset_changes(zone: ZoneInfo, after: datetime, until: datetime) -> Iterator[datetime]:
    """The instants (UTC) in ``(after, until]`` at which the zone's UTC offset changes.

    Changes of abbreviation or of the DST flag alone move no clock and are not reported.
    """
    low = _seconds(after)
    low_offset = _offset(zone, low)
    end = _seconds(until) + 1
    while low < end:
        high = min(low + _SAMPLE_S, end)
        high_offset = _offset(zone, high)
        if high_offset != low_offset:
            yield _instant(_bisect_change(zone, low, high))
        low, low_offset = high, high_offset


def _bisect_change(zone: ZoneInfo, low: int, high: int) -> int:
    """The second in ``(low, high]`` from which the offset differs from the one at ``low``.

    TZif files store transitions as whole seconds, so that second is the exact instant.
    """
    before = _offset(zone, low)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, middle) == before:
            low = middle
        else:
            high = middle
    return high


def _offset(zone: ZoneInfo, seconds: int) -> timedelta | None:
    return _instant(seconds).astimezone(zone).utcoffset()


def _seconds(instant: datetime) -> int:
    """Whole seconds since the epoch, rounded down (no float, so no lost microseconds)."""
    return (instant - _EPOCH) // timedelta(seconds=1)


def _instant(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)
