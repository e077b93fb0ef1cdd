"""The send-window rule (shared.windows): hand-computed DST cases, then a minute-by-minute oracle.

Every expected instant below was worked out from the zone's published rules, not by running
the code; the comment beside each case shows the sum.
"""

from datetime import UTC, datetime, time, timedelta
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.timezones import zone
from shared.windows import Window, WindowSearchError, is_open, next_closing, next_opening

MINUTES_A_DAY = 1440


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(start: str, end: str) -> Window:
    return Window(time.fromisoformat(start), time.fromisoformat(end))


# --- exact cases ---------------------------------------------------------------------------

# (zone, window, at, expected next opening)
OPENINGS = {
    # Berlin springs forward on Sunday 2027-03-28 (01:00Z, CET+1 -> CEST+2). At 22:30 CET on
    # the Saturday the window is shut; it opens at 09:00 CEST = 07:00Z, not 08:00Z.
    "berlin-after-spring-forward": (
        "Europe/Berlin",
        ("09:00", "21:00"),
        "2027-03-27T21:30",
        "2027-03-28T07:00",
    ),
    # New York springs forward on 2027-03-14 at 07:00Z (02:00 EST -> 03:00 EDT): 02:15-03:00
    # is never read that day. The next reading of 02:15 is on the 15th, in EDT: 06:15Z.
    "new-york-window-inside-the-gap": (
        "America/New_York",
        ("02:15", "03:00"),
        "2027-03-14T06:00",
        "2027-03-15T06:15",
    ),
    # Yekaterinburg is +05 all year: 06:00Z is 11:00, and 21:00 local is 16:00Z.
    "yekaterinburg-overnight": (
        "Asia/Yekaterinburg",
        ("21:00", "09:00"),
        "2027-07-01T06:00",
        "2027-07-01T16:00",
    ),
    # Berlin falls back on 2027-10-31 at 01:00Z; 04:30Z is 05:30 CET, inside 22:00-06:00.
    "berlin-overnight-after-fall-back": (
        "Europe/Berlin",
        ("22:00", "06:00"),
        "2027-10-31T04:30",
        "2027-10-31T04:30",
    ),
    # New York falls back on 2027-11-07 at 06:00Z (02:00 EDT -> 01:00 EST). 05:45Z is
    # 01:45 EDT, outside 01:00-01:30; the clock reads 01:00 again at the change itself.
    "new-york-fold-reopens": (
        "America/New_York",
        ("01:00", "01:30"),
        "2027-11-07T05:45",
        "2027-11-07T06:00",
    ),
    # 05:50Z is 01:50 EDT; the clock reads 01:15 a second time at 01:15 EST = 06:15Z, after
    # the change at 06:00Z (which itself jumps to 01:00, still outside 01:15-01:45).
    "new-york-fold-second-reading-of-start": (
        "America/New_York",
        ("01:15", "01:45"),
        "2027-11-07T05:50",
        "2027-11-07T06:15",
    ),
    # 06:30Z is 01:30 EST; at 07:00Z the clock jumps from 01:59:59 to 03:00 EDT, inside
    # 02:15-03:30: the window opens at the change, not at 02:15 (never read that day).
    "new-york-gap-opens-the-window": (
        "America/New_York",
        ("02:15", "03:30"),
        "2027-03-14T06:30",
        "2027-03-14T07:00",
    ),
    # Lord Howe is +10:30, +11 in summer, moving by half an hour: on 2027-10-03 its clock
    # jumps from 02:00 to 02:30 at 15:30Z on the 2nd, so 02:00-02:30 is never read. 15:00Z is
    # 01:30 +10:30; the next 02:00 is on the 4th, at +11: 15:00Z on the 3rd.
    "lord-howe-half-hour-gap": (
        "Australia/Lord_Howe",
        ("02:00", "02:30"),
        "2027-10-02T15:00",
        "2027-10-03T15:00",
    ),
    # Kathmandu is +05:45: 00:00Z is 05:45, and 09:00 local is 03:15Z.
    "kathmandu-quarter-hour-offset": (
        "Asia/Kathmandu",
        ("09:00", "17:00"),
        "2027-01-10T00:00",
        "2027-01-10T03:15",
    ),
    # Samoa went from -10 to +14 at 10:00Z on 2011-12-30: 2011-12-29 24:00 was followed by
    # 2011-12-31 00:00, so no window opens on the 30th. 20:00Z on the 29th is 10:00 local,
    # just after that day's window; the next 09:00 is on the 31st at +14: 19:00Z on the 30th.
    "apia-skipped-day": (
        "Pacific/Apia",
        ("09:00", "10:00"),
        "2011-12-29T20:00",
        "2011-12-30T19:00",
    ),
}

# (zone, window, at, expected next closing)
CLOSINGS = {
    # 05:15Z is 01:15 EDT; the window shuts at 01:30 EDT = 05:30Z.
    "new-york-fold-first-pass": (
        "America/New_York",
        ("01:00", "01:30"),
        "2027-11-07T05:15",
        "2027-11-07T05:30",
    ),
    # 06:15Z is 01:15 EST, the second pass; it shuts at 01:30 EST = 06:30Z.
    "new-york-fold-second-pass": (
        "America/New_York",
        ("01:00", "01:30"),
        "2027-11-07T06:15",
        "2027-11-07T06:30",
    ),
    # Open from the 07:00Z jump (03:00 EDT) until 03:30 EDT = 07:30Z.
    "new-york-gap-opened-window-closes": (
        "America/New_York",
        ("02:15", "03:30"),
        "2027-03-14T07:10",
        "2027-03-14T07:30",
    ),
    # 06:45Z is 01:45 EST, inside 01:30-02:30; at 07:00Z the clock jumps out to 03:00 EDT.
    "new-york-gap-closes-the-window": (
        "America/New_York",
        ("01:30", "02:30"),
        "2027-03-14T06:45",
        "2027-03-14T07:00",
    ),
    # Lord Howe falls back from 02:00 +11 to 01:30 +10:30 at 15:00Z on 2027-04-03. The
    # half-hour window 01:30-02:00 opens at 01:30 +11 (14:30Z), is read again from 15:00Z,
    # and shuts only at 02:00 +10:30 = 15:30Z: a full hour.
    "lord-howe-half-hour-fold": (
        "Australia/Lord_Howe",
        ("01:30", "02:00"),
        "2027-04-03T14:45",
        "2027-04-03T15:30",
    ),
    # Kathmandu: 04:00Z is 09:45; 17:00 local is 11:15Z.
    "kathmandu-quarter-hour-offset": (
        "Asia/Kathmandu",
        ("09:00", "17:00"),
        "2027-01-10T04:00",
        "2027-01-10T11:15",
    ),
}


@pytest.mark.parametrize(("name", "bounds", "at", "expected"), OPENINGS.values(), ids=OPENINGS)
def test_next_opening_exact(name: str, bounds: tuple[str, str], at: str, expected: str) -> None:
    opening = next_opening(window(*bounds), zone(name), utc(at))
    assert opening == utc(expected)
    assert opening.tzinfo is UTC


@pytest.mark.parametrize(("name", "bounds", "at", "expected"), CLOSINGS.values(), ids=CLOSINGS)
def test_next_closing_exact(name: str, bounds: tuple[str, str], at: str, expected: str) -> None:
    closing = next_closing(window(*bounds), zone(name), utc(at))
    assert closing == utc(expected)
    assert closing.tzinfo is UTC


def test_open_on_both_passes_of_a_fold() -> None:
    fold_window, new_york = window("01:00", "01:30"), zone("America/New_York")
    assert is_open(fold_window, new_york, utc("2027-11-07T05:15"))  # 01:15 EDT
    assert is_open(fold_window, new_york, utc("2027-11-07T06:15"))  # 01:15 EST
    assert not is_open(fold_window, new_york, utc("2027-11-07T05:45"))  # 01:45 EDT


def test_open_instant_is_returned_as_is_in_utc() -> None:
    berlin = zone("Europe/Berlin")
    at = utc("2027-10-31T04:30").astimezone(berlin)  # 05:30 CET, given in local time
    assert is_open(window("22:00", "06:00"), berlin, at)
    opening = next_opening(window("22:00", "06:00"), berlin, at)
    assert opening == at
    assert opening.tzinfo is UTC


def test_apia_skipped_day_never_opens() -> None:
    apia, day_window = zone("Pacific/Apia"), window("00:00", "23:59")
    # The clock went from 23:59:59 on the 29th to 00:00 on the 31st in one second.
    assert not is_open(day_window, apia, utc("2011-12-30T09:59:59"))
    assert next_opening(day_window, apia, utc("2011-12-30T09:59:59")) == utc("2011-12-30T10:00")


@pytest.mark.parametrize(
    ("start", "end"),
    [(time(9), time(9)), (time(9, 0, 30), time(10)), (time(9), time(10, tzinfo=UTC))],
    ids=["empty", "seconds", "aware"],
)
def test_invalid_window_is_refused(start: time, end: time) -> None:
    with pytest.raises(ValueError, match="window"):
        Window(start, end)


@pytest.mark.parametrize("function", [is_open, next_opening, next_closing])
def test_naive_instant_is_refused(function: object) -> None:
    assert callable(function)
    with pytest.raises(ValueError, match="timezone-aware"):
        function(window("09:00", "21:00"), zone("Europe/Berlin"), datetime(2027, 1, 1, 12))


def test_search_error_is_a_value_error() -> None:
    # Callers that already handle bad input as ValueError need no new except clause.
    assert issubclass(WindowSearchError, ValueError)


# --- oracle --------------------------------------------------------------------------------
# Written differently from the module on purpose: minutes of the day, not times, and a walk
# over whole UTC minutes, not a search over edges. In these zones every offset and every
# change since 1970 is a whole number of minutes, so the state can only change on a whole
# UTC minute and the walk cannot step over an opening.


@cache
def open_minutes(start: int, end: int) -> frozenset[int]:
    """The minutes of the day (0-1439) the window covers, stepping from start to end."""
    minutes, minute = set(), start
    while minute != end:
        minutes.add(minute)
        minute = (minute + 1) % MINUTES_A_DAY
    return frozenset(minutes)


def oracle_is_open(minutes: frozenset[int], name: str, at: datetime) -> bool:
    local = at.astimezone(zone(name))
    return local.hour * 60 + local.minute in minutes


def oracle_next(minutes: frozenset[int], name: str, at: datetime, want_open: bool) -> datetime:
    """``at`` when its state is the wanted one, else the first whole UTC minute after it that is."""
    # In UTC: == between datetimes of two zones is always False when either reads a time in a
    # fold (PEP 495), so an answer in the client's zone could not be compared.
    at = at.astimezone(UTC)
    if oracle_is_open(minutes, name, at) is want_open:
        return at
    minute = at.replace(second=0, microsecond=0)
    for _ in range(8 * MINUTES_A_DAY):
        minute += timedelta(minutes=1)
        if oracle_is_open(minutes, name, minute) is want_open:
            return minute
    raise AssertionError("the oracle found no change within 8 days")


# --- strategies ----------------------------------------------------------------------------

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Apia",
    "Asia/Vladivostok",
    "Asia/Tehran",
    "America/Sao_Paulo",
]
FIRST_DAY, LAST_DAY = datetime(1990, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)


@cache
def changes(name: str) -> tuple[datetime, ...]:
    """The zone's offset changes in 1990-2040, to the minute: by day, then hour, then minute."""
    tz, found = zone(name), []
    day = FIRST_DAY
    while day < LAST_DAY:
        if (day + timedelta(days=1)).astimezone(tz).utcoffset() != day.astimezone(tz).utcoffset():
            hour = first_change(name, day, timedelta(hours=1)) - timedelta(hours=1)
            found.append(first_change(name, hour, timedelta(minutes=1)))
        day += timedelta(days=1)
    return tuple(found)


def first_change(name: str, after: datetime, step: timedelta) -> datetime:
    """The first of ``after + step``, ``after + 2 * step``, ... whose offset is not ``after``'s."""
    tz = zone(name)
    before, instant = after.astimezone(tz).utcoffset(), after + step
    while instant.astimezone(tz).utcoffset() == before:
        instant += step
    return instant


def wall_minutes(name: str, change: datetime) -> tuple[int, int]:
    """The minute of the day the clock read just before ``change``, and the one it jumped to."""
    tz = zone(name)
    before, after = (change - timedelta(seconds=1)).astimezone(tz), change.astimezone(tz)
    return before.hour * 60 + before.minute, after.hour * 60 + after.minute


any_instants = st.datetimes(
    min_value=FIRST_DAY.replace(tzinfo=None),
    max_value=LAST_DAY.replace(tzinfo=None),
    timezones=st.just(UTC),
)
# Close to a change (where its traps are) or anywhere within two days of it.
shifts = st.one_of(
    st.timedeltas(min_value=timedelta(hours=-3), max_value=timedelta(hours=3)),
    st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
)


@st.composite
def windows(draw: st.DrawFn, around: tuple[int, ...] = ()) -> Window:
    """Any window, short ones, ones around midnight and 01:00-03:30, and ones near ``around``.

    ``around`` holds minutes of the day the clock jumped from or to: a window starting or
    ending near one is cut by the gap or read twice in the fold.
    """
    starts = [
        st.integers(0, MINUTES_A_DAY - 1),
        st.integers(22 * 60, 27 * 60 + 30).map(lambda minute: minute % MINUTES_A_DAY),
    ]
    if around:
        near = st.tuples(st.sampled_from(around), st.integers(-90, 90))
        starts.append(near.map(lambda pair: (pair[0] + pair[1]) % MINUTES_A_DAY))
    start = draw(st.one_of(starts))
    length = draw(st.one_of(st.integers(1, 90), st.integers(1, MINUTES_A_DAY - 1)))
    end = (start + length) % MINUTES_A_DAY
    return Window(time(start // 60, start % 60), time(end // 60, end % 60))


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, Window, datetime]:
    """A zone, a window and an instant: anywhere in 1990-2040, or near one of the zone's changes."""
    name = draw(st.sampled_from(ZONES))
    if len(changes(name)) > 0 and draw(st.booleans()):
        change = draw(st.sampled_from(changes(name)))
        at = change + draw(shifts)
        bounds = draw(st.one_of(windows(), windows(around=wall_minutes(name, change))))
    else:
        # Kathmandu has no change in the range: its last one (to +05:45) was in 1986.
        at, bounds = draw(any_instants), draw(windows())
    if draw(st.booleans()):
        # The same instant given in the client's zone, fold=1 included in a repeated hour.
        at = at.astimezone(zone(name))
    return name, bounds, at


def minutes_of(bounds: Window) -> frozenset[int]:
    return open_minutes(
        bounds.start.hour * 60 + bounds.start.minute, bounds.end.hour * 60 + bounds.end.minute
    )


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(cases())
def test_is_open_agrees_with_the_oracle(case: tuple[str, Window, datetime]) -> None:
    name, bounds, at = case
    assert is_open(bounds, zone(name), at) is oracle_is_open(minutes_of(bounds), name, at)


@settings(max_examples=500, deadline=None)
@given(cases())
def test_next_opening_agrees_with_the_oracle(case: tuple[str, Window, datetime]) -> None:
    name, bounds, at = case
    expected = oracle_next(minutes_of(bounds), name, at, want_open=True)
    assert next_opening(bounds, zone(name), at) == expected


@settings(max_examples=500, deadline=None)
@given(cases())
def test_next_closing_agrees_with_the_oracle(case: tuple[str, Window, datetime]) -> None:
    name, bounds, at = case
    expected = oracle_next(minutes_of(bounds), name, at, want_open=False)
    assert next_closing(bounds, zone(name), at) == expected
