"""Client time zones: which names are accepted, and how they are loaded.

The list and the rules come from the ``tzdata`` package, not the host: a host's zone folder
also holds ``localtime``, ``posixrules``, ``posix/…`` and ``right/…`` entries, and its rules
may be older, so the same input would be valid or not depending on the machine.
"""

from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

# In tzdata's list, but not a place: "Factory" is a placeholder zone with an "-00" offset.
_NOT_PLACES = frozenset({"Factory"})


@cache
def known_zones() -> frozenset[str]:
    """Every IANA zone name a client may have (``Europe/Moscow``, ``UTC``, ``Etc/GMT-3``)."""
    listed = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(listed) - _NOT_PLACES


def is_known_zone(name: str) -> bool:
    """True for an exact, case-sensitive IANA name; paths, offsets and aliases of the host fail."""
    return name in known_zones()


@cache
def zone(name: str) -> ZoneInfo:
    """The zone's rules from ``tzdata``; ``name`` must pass :func:`is_known_zone`."""
    if not is_known_zone(name):
        raise ValueError("unknown time zone")
    with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


def zone_or_utc(name: str) -> ZoneInfo:
    """The zone, or UTC for a name this ``tzdata`` does not know.

    Every stored name passed :func:`is_known_zone` when it was written; a later ``tzdata``
    that dropped it must not stop delivery, so such clients are treated as UTC.
    """
    try:
        return zone(name)
    except (ValueError, OSError):
        return zone("UTC")
