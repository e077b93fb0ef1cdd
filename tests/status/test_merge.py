"""Bodies to results, and several results of one message to one: pure, in memory."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.status.merge import (
    MAX_ERROR_CHARS,
    POISON_ERROR,
    Parsed,
    columns,
    combine,
    merge,
    parse_dead_work,
    parse_results,
)
from shared.messages import Result, ResultBatch, Work
from shared.statuses import MESSAGE_FINAL, MessageStatus

SENT_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def result(status: str, attempts: int = 1, error: str | None = None, **fields: object) -> Result:
    return Result.model_validate(
        {"message_id": 7, "status": status, "attempts": attempts, "last_error": error, **fields}
    )


def work(**fields: object) -> bytes:
    body = Work(
        message_id=7,
        mailing_id=1,
        client_id=2,
        phone="79161234567",
        text="hello",
        deadline_at=SENT_AT + timedelta(hours=1),
        **fields,  # type: ignore[arg-type]
    )
    return body.model_dump_json().encode()


def test_a_valid_result_parses() -> None:
    body = result("sent", 2, sent_at=SENT_AT).model_dump_json().encode()

    assert parse_results(body) == Parsed([result("sent", 2, sent_at=SENT_AT)], [])


def test_a_batch_parses_in_the_order_reported() -> None:
    reported = [result("queued", 1, "HTTP 503"), result("sent", 2, sent_at=SENT_AT)]
    body = ResultBatch(results=reported).model_dump_json().encode()

    assert parse_results(body) == Parsed(reported, [])


def test_an_invalid_result_in_a_batch_costs_only_itself() -> None:
    body = (
        b'{"results": [{"message_id": 7, "status": "delivered", "attempts": 1},'
        b' {"message_id": 7, "status": "sent", "attempts": 1}, "not a result"]}'
    )

    assert parse_results(body) == Parsed([result("sent")], [7, None])


def test_a_batch_keeps_what_a_row_can_hold_and_names_the_rest() -> None:
    body = (
        b'{"results": [{"message_id": 7, "status": "sent", "attempts": 1},'
        b' {"message_id": 0, "status": "sent", "attempts": 1},'
        b' {"message_id": 8, "status": "pending", "attempts": 1, "dispatch": 2147483648}]}'
    )

    assert parse_results(body) == Parsed([result("sent")], [0, 8])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"message_id": 7}',
        b'{"message_id": 7, "status": "delivered", "attempts": 1}',
        b'{"message_id": 7, "status": "sent", "attempts": -1}',
        b'{"message_id": 0, "status": "sent", "attempts": 1}',
        b'{"message_id": 9223372036854775808, "status": "sent", "attempts": 1}',
        b'{"message_id": 7, "status": "sent", "attempts": 2147483648}',
        b'{"message_id": 7, "status": "pending", "attempts": 1, "dispatch": 2147483648}',
        b'{"results": []}',
        b'{"results": [{"message_id": 0, "status": "sent", "attempts": 1}]}',
        b'{"results": [{"message_id": 7, "status": "sent"}]}',
    ],
    ids=[
        "not-json",
        "array",
        "no-status",
        "unknown-status",
        "negative-attempts",
        "id-zero",
        "id-past-bigint",
        "attempts-past-integer",
        "dispatch-past-integer",
        "empty-batch",
        "batch-of-id-zero",
        "batch-with-an-invalid-result",
    ],
)
def test_a_body_no_row_could_hold_is_invalid(body: bytes) -> None:
    assert parse_results(body) is None


def test_last_error_loses_nul_characters_and_is_cut_to_length() -> None:
    body = result("queued", error="a\x00b" + "x" * 5000).model_dump_json().encode()

    parsed = parse_results(body)

    assert parsed is not None
    [stored] = parsed.results
    assert stored.last_error is not None
    assert stored.last_error.startswith("abx")
    assert len(stored.last_error) == MAX_ERROR_CHARS


def test_a_naive_sent_at_is_taken_as_utc() -> None:
    body = b'{"message_id": 7, "status": "sent", "attempts": 1, "sent_at": "2025-03-01T12:00:00"}'

    parsed = parse_results(body)

    assert parsed is not None
    assert [r.sent_at for r in parsed.results] == [SENT_AT]


def test_dead_work_means_its_message_failed_after_its_attempts() -> None:
    assert parse_dead_work(work(attempt=3)) == result("failed", 3, POISON_ERROR)


def test_dead_work_that_does_not_parse_is_invalid() -> None:
    assert parse_dead_work(b'{"message_id": 7}') is None
    assert parse_dead_work(result("sent").model_dump_json().encode()) is None


def test_a_final_status_wins_over_progress_in_either_order() -> None:
    progress = result("queued", 3, "503")
    final = result("failed", 2, "400 refused")

    assert combine(progress, final) == result("failed", 3, "400 refused")
    assert combine(final, progress) == result("failed", 3, "503")


def test_sent_wins_over_another_final_and_keeps_its_sent_at() -> None:
    sent = result("sent", 2, sent_at=SENT_AT)
    expired = result("expired", 2, "deadline")

    assert combine(expired, sent) == result("sent", 2, "deadline", sent_at=SENT_AT)
    assert combine(sent, expired) == result("sent", 2, "deadline", sent_at=SENT_AT)


def test_between_two_finals_the_first_stays() -> None:
    assert combine(result("expired"), result("failed")).status == MessageStatus.EXPIRED


def test_the_last_error_given_is_kept() -> None:
    merged = merge([result("queued", 1, "503"), result("queued", 2, "timeout"), result("sent", 3)])

    assert merged == {7: result("sent", 3, "timeout")}


def test_two_put_backs_keep_the_newest_dispatch_in_either_order() -> None:
    """A redelivered copy of an older put-back may arrive last; only the newest one counts."""
    older, newer = result("pending", 1, dispatch=1), result("pending", 1, dispatch=2)

    assert combine(older, newer).dispatch == 2
    assert combine(newer, older).dispatch == 2


def test_a_put_back_overtaken_by_a_final_status_has_no_dispatch() -> None:
    assert (
        combine(result("pending", 1, dispatch=3), result("sent", 2, sent_at=SENT_AT)).dispatch
        is None
    )


def test_merge_keeps_one_result_per_id_and_columns_sort_by_id() -> None:
    results = [result("sent", 1, message_id=9, sent_at=SENT_AT), result("queued", 2, "503")]

    batch = columns(merge([*results, result("queued", 1, message_id=9)]))

    assert batch.ids == [7, 9]
    assert batch.statuses == ["queued", "sent"]
    assert batch.attempts == [2, 1]
    assert batch.errors == ["503", None]
    assert batch.sent_ats == [None, SENT_AT]


_results = st.builds(
    lambda status, attempts, error, minute: result(
        status.value,
        attempts,
        error,
        sent_at=SENT_AT + timedelta(minutes=minute) if status == MessageStatus.SENT else None,
    ),
    st.sampled_from(MessageStatus),
    st.integers(0, 20),
    st.none() | st.sampled_from(["503", "timeout", "400"]),
    st.integers(0, 100),
)


@given(st.lists(_results, min_size=1, max_size=12), st.integers(0, 12))
def test_merging_in_any_grouping_gives_the_same_result(results: list[Result], cut: int) -> None:
    # Batches split a message's results anywhere; merging must not depend on where.
    head, tail = results[:cut], results[cut:]
    whole = merge(results)[7]
    parts = [merge(part)[7] for part in (head, tail) if part]

    assert (combine(*parts) if len(parts) == 2 else parts[0]) == whole


@given(st.lists(_results, min_size=1, max_size=12))
def test_merged_result_keeps_what_the_statistics_need(results: list[Result]) -> None:
    merged = merge(results)[7]
    statuses = [r.status for r in results]

    assert merged.attempts == max(r.attempts for r in results)
    assert (merged.status == MessageStatus.SENT) == (MessageStatus.SENT in statuses)
    assert (merged.status in MESSAGE_FINAL) == any(s in MESSAGE_FINAL for s in statuses)
    if merged.status == MessageStatus.SENT:
        first_sent = next(r for r in results if r.status == MessageStatus.SENT)
        assert merged.sent_at == first_sent.sent_at
