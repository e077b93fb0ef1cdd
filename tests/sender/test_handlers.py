"""What counts as a work message at all; anything else is poison, rejected at once."""

import pytest

from services.sender.handlers import parse_work

VALID = (
    '{"message_id": 1, "mailing_id": 2, "client_id": 3, "phone": "79001234567", "text": "Hi",'
    ' "deadline_at": "2030-01-01T00:00:00+00:00", "attempt": 2, "last_error": "HTTP 503"}'
)


def test_a_work_message_is_read() -> None:
    work = parse_work(VALID.encode())
    assert work is not None
    assert (work.message_id, work.attempt, work.last_error) == (1, 2, "HTTP 503")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"message_id": 1}',
        VALID.replace('"79001234567"', '"+79001234567"').encode(),
        VALID.replace("+00:00", "").encode(),  # a deadline without its offset
        VALID.replace('"attempt": 2', '"attempt": 0').encode(),
    ],
)
def test_anything_else_is_poison(body: bytes) -> None:
    assert parse_work(body) is None
