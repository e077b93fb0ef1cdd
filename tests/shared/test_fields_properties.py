"""Property tests of the phone and time-zone rules (SPEC §2), as pure functions."""

import re
import string
import unicodedata
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.api.fields import check_phone, check_timezone
from shared.timezones import is_known_zone, known_zones, zone

ASCII_DIGITS = "0123456789"
VALID_PHONE = re.compile(r"7[0-9]{10}", re.ASCII)

valid_phones = st.from_regex(VALID_PHONE, fullmatch=True)
# Characters that are digits to Unicode (and to ``\d`` and ``int()``) but not ASCII digits.
foreign_digits = st.characters(categories=["Nd"]).filter(lambda c: c not in ASCII_DIGITS)


def _is_valid_phone(value: str) -> bool:
    return VALID_PHONE.fullmatch(value) is not None


def _rejected_phone(value: str) -> bool:
    try:
        check_phone(value)
    except ValueError:
        return True
    return False


# --- phone ---------------------------------------------------------------------------------


@given(valid_phones)
def test_seven_and_ten_ascii_digits_are_accepted(phone: str) -> None:
    assert check_phone(phone) == phone


@given(st.text())
@example("")
@example("79161234567\n")
@example("\n79161234567")
def test_any_other_text_is_rejected(value: str) -> None:
    if _is_valid_phone(value):
        assert check_phone(value) == value
    else:
        assert _rejected_phone(value)


@given(st.text(alphabet=ASCII_DIGITS + "+-() 7\n\t", max_size=14))
def test_digit_heavy_text_is_judged_exactly(value: str) -> None:
    assert _rejected_phone(value) != _is_valid_phone(value)


@pytest.mark.parametrize(
    "near_miss",
    [
        r"7[0-9]{9}",  # one digit short
        r"7[0-9]{11,14}",  # too long
        r"[0-689][0-9]{10}",  # another first digit, 8… included
        r"\+7[0-9]{10}",
        r"8[0-9]{10}",
        r"7[0-9]{10}[\n\r\t ]",  # trailing whitespace, newline included
        r"[\n\r\t ]7[0-9]{10}",
        r"7[0-9]{3}-[0-9]{3}-[0-9]{2}-[0-9]{2}",
        r"7[0-9]{0,9}[a-zA-Z][0-9]{0,9}",
    ],
)
@given(data=st.data())
def test_near_misses_are_rejected(near_miss: str, data: st.DataObject) -> None:
    value = data.draw(st.from_regex(near_miss, fullmatch=True))
    assert not _is_valid_phone(value)

    assert _rejected_phone(value)


@given(valid_phones, st.integers(min_value=0, max_value=10), foreign_digits)
def test_a_non_ascii_digit_anywhere_is_rejected(phone: str, position: int, digit: str) -> None:
    value = phone[:position] + digit + phone[position + 1 :]

    assert unicodedata.decimal(digit) in range(10)  # Python would read it as a digit
    assert _rejected_phone(value)


@given(st.lists(foreign_digits, min_size=10, max_size=10))
def test_phone_in_another_script_is_rejected(digits: list[str]) -> None:
    assert _rejected_phone("7" + "".join(digits))


@given(valid_phones, st.sampled_from(["\n", "\r\n", "\x00", " ", "\u00a0", "\u200b"]))
def test_trailing_junk_is_rejected(phone: str, junk: str) -> None:
    assert _rejected_phone(phone + junk)
    assert _rejected_phone(junk + phone)


# --- time zones ----------------------------------------------------------------------------

ZONES = sorted(known_zones())
known_names = st.sampled_from(ZONES)
unknown_text = st.text(max_size=80).filter(lambda name: name not in known_zones())


def _rejected_zone(name: str) -> bool:
    try:
        check_timezone(name)
    except ValueError:
        return True
    return False


def test_known_zones_are_the_iana_places() -> None:
    assert len(ZONES) > 300
    assert {"UTC", "Europe/Moscow", "Etc/GMT-3", "America/Argentina/Buenos_Aires"} <= set(ZONES)
    assert not {"localtime", "posixrules", "Factory", ""} & set(ZONES)
    assert not [name for name in ZONES if name.startswith(("posix/", "right/", "/"))]


def test_every_known_zone_loads() -> None:
    failures = {}
    for name in ZONES:
        try:
            loaded = zone(name)
            # A real rule set: it answers an offset for some instant.
            offset = datetime(2025, 1, 1, tzinfo=loaded).utcoffset()
        except Exception as exc:  # collect every failure, report them at once
            failures[name] = repr(exc)
            continue
        if loaded.key != name or offset is None or check_timezone(name) != name:
            failures[name] = f"key={loaded.key!r} offset={offset!r}"

    assert failures == {}


@given(known_names)
def test_known_names_are_accepted(name: str) -> None:
    assert check_timezone(name) == name
    assert is_known_zone(name)


@given(unknown_text)
@example("localtime")
@example("posixrules")
@example("Factory")
@example("")
@example("UTC+3")
@example("../etc/passwd")
@example("/usr/share/zoneinfo/UTC")
@example("posix/Europe/Moscow")
@example("right/UTC")
@example("Europe/Moskow")
@example("Europe/Moscow/")
@example("Europe//Moscow")
@example("Europe/Moscow\n")
@example("Europe/Moscow\x00")
def test_unknown_names_are_rejected(name: str) -> None:
    assert _rejected_zone(name)
    with pytest.raises(ValueError, match="unknown time zone"):
        zone(name)


@given(known_names, st.sampled_from([str.lower, str.upper, str.swapcase, str.title]))
def test_names_are_case_sensitive(name: str, change_case: Callable[[str], str]) -> None:
    changed = change_case(name)
    if changed in known_zones():  # e.g. "UTC".upper(), or another real zone
        return
    assert _rejected_zone(changed)
    with pytest.raises(ValueError, match="unknown time zone"):
        zone(changed)


@given(known_names, st.sampled_from([" ", "\n", "/", "/..", "\x00", "\u00a0"]))
def test_known_names_with_junk_are_rejected(name: str, junk: str) -> None:
    assert _rejected_zone(name + junk)
    assert _rejected_zone(junk + name)


@given(known_names, st.text(alphabet=string.ascii_letters + "/_-+0123456789", max_size=3))
def test_near_miss_names_are_rejected_unless_real(name: str, suffix: str) -> None:
    candidate = name + suffix
    assert _rejected_zone(candidate) == (candidate not in known_zones())
