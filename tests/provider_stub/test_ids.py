"""``IdSet``: the stub's bitmap of msgIds, against a Python set."""

from hypothesis import given
from hypothesis import strategies as st

from services.provider_stub.ids import IdSet

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
int64 = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)


def test_add_is_true_only_the_first_time() -> None:
    ids = IdSet()

    assert ids.add(42) is True
    assert ids.add(42) is False
    assert ids.add(43) is True
    assert ids.count == 2


def test_membership() -> None:
    ids = IdSet()
    ids.add(7)

    assert 7 in ids
    assert 6 not in ids
    assert 8 not in ids
    assert 7 + 65_536 not in ids
    assert 7 - 65_536 not in ids


def test_empty_set_holds_nothing() -> None:
    ids = IdSet()

    assert ids.count == 0
    assert 0 not in ids
    assert INT64_MIN not in ids


def test_negative_ids_are_apart_from_positive_ones() -> None:
    ids = IdSet()

    assert ids.add(-1) is True
    assert ids.add(1) is True
    assert ids.add(-65_537) is True

    assert -1 in ids
    assert 1 in ids
    assert -65_537 in ids
    assert 0 not in ids
    assert 65_535 not in ids
    assert -65_536 not in ids
    assert ids.count == 3


def test_int64_bounds() -> None:
    ids = IdSet()

    assert ids.add(INT64_MAX) is True
    assert ids.add(INT64_MIN) is True
    assert ids.add(INT64_MAX) is False
    assert ids.add(INT64_MIN) is False

    assert INT64_MAX in ids
    assert INT64_MIN in ids
    assert INT64_MAX - 1 not in ids
    assert INT64_MIN + 1 not in ids
    assert ids.count == 2


def test_ids_65536_apart_are_different() -> None:
    ids = IdSet()
    spaced = [n * 65_536 for n in range(-3, 4)] + [5 + n * 65_536 for n in range(-3, 4)]

    added = [ids.add(item) for item in spaced]

    assert added == [True] * len(spaced)
    assert ids.count == len(spaced)
    assert all(item in ids for item in spaced)
    assert 65_536 + 1 not in ids


def test_a_million_consecutive_ids() -> None:
    ids = IdSet()
    start = 10**12

    assert all(ids.add(item) for item in range(start, start + 1_000_000))

    assert ids.count == 1_000_000
    assert start - 1 not in ids
    assert start + 1_000_000 not in ids
    assert start + 999_999 in ids


@given(st.lists(int64, max_size=200), st.lists(int64, max_size=50))
def test_behaves_like_a_set(items: list[int], probes: list[int]) -> None:
    ids, reference = IdSet(), set[int]()

    for item in items:
        assert ids.add(item) is (item not in reference)
        reference.add(item)

    assert ids.count == len(reference)
    for item in [*items, *probes, *(i + 1 for i in items), *(i ^ 65_536 for i in items)]:
        assert (item in ids) is (item in reference)


@given(st.lists(st.integers(min_value=-300_000, max_value=300_000), max_size=300))
def test_behaves_like_a_set_on_neighbouring_ids(items: list[int]) -> None:
    ids, reference = IdSet(), set[int]()

    for item in items:
        assert ids.add(item) is (item not in reference)
        reference.add(item)

    assert ids.count == len(reference)
    assert all((item in ids) is (item in reference) for item in range(-300_001, 300_002, 97))
