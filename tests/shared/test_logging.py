"""Structured logs: tokens never reach them, bound ids always do (SPEC §4, §7)."""

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog
from aiormq.exceptions import ConnectionClosed
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from shared.logs import REDACTED, bind_ids, clear_ids, configure_logging, get_logger
from shared.settings import DatabaseSettings, secret_values
from tests.api.seed import CLIENTS, MAILINGS, STATS, create_mailing, make_app

TOKEN = "log-test-token-7d41c0e9b2"
_TOUCHED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@contextmanager
def _logging_to(
    stream: io.StringIO, log_format: str = "json", secrets: Iterable[str] = (TOKEN,)
) -> Iterator[None]:
    """Logging configured as a service does, into ``stream``; the previous state after."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_named = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in _TOUCHED_LOGGERS
    }
    saved_structlog = structlog.get_config() if structlog.is_configured() else None
    configure_logging(level="INFO", log_format=log_format, secrets=secrets, stream=stream)
    try:
        yield
    finally:
        clear_ids()
        root.handlers[:], _ = saved_root
        root.setLevel(saved_root[1])
        for name, (handlers, propagate) in saved_named.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate
        if saved_structlog is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**saved_structlog)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _one(records: list[dict[str, Any]], event: str) -> dict[str, Any]:
    found = [record for record in records if record["event"] == event]
    assert len(found) == 1, records
    return found[0]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """The API with our token, and one route that fails with the token in its error."""
    application = make_app(database_url, token=TOKEN)

    async def boom() -> None:
        raise RuntimeError(f"provider said: token {TOKEN} is expired")

    application.add_api_route("/boom", boom)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the token; a route that raises answers 500 instead of raising here."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        yield c


async def test_token_never_logged_by_requests(app: FastAPI) -> None:
    stream = io.StringIO()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    right = {"Authorization": f"Bearer {TOKEN}"}
    with _logging_to(stream):
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            responses = [
                await client.get(CLIENTS, headers=right),
                await client.get(CLIENTS, headers={"Authorization": "Bearer nope"}),
                await client.get(CLIENTS, params={"token": TOKEN}),
                await client.get(STATS, params={"access_token": TOKEN}, headers=right),
                await client.get(f"{CLIENTS}/{TOKEN}", headers=right),
                await client.get("/boom"),
            ]

    assert [r.status_code for r in responses] == [200, 401, 401, 200, 422, 500]
    assert all(TOKEN not in r.text for r in responses)
    output = stream.getvalue()
    assert TOKEN not in output
    records = _records(stream)
    done = [record for record in records if record["event"] == "request.done"]
    assert [record["status"] for record in done] == [200, 401, 401, 200, 422, 500]
    # The token in a path reaches the line only as the marker.
    assert done[4]["path"] == f"{CLIENTS}/{REDACTED}"
    failure = _one(records, "request.failed")
    assert failure["level"] == "error"
    assert f"provider said: token {REDACTED} is expired" in failure["exception"]


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_token_redacted_from_events_and_exceptions(log_format: str) -> None:
    stream = io.StringIO()
    log = get_logger("tests.logging")
    with _logging_to(stream, log_format):
        log.info("provider.configured", token=TOKEN, url=f"https://p.example/?t={TOKEN}")
        log.info("headers.seen", headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            raise PermissionError(f"401 Unauthorized for Bearer {TOKEN}")
        except PermissionError:
            log.exception("provider.refused")
        log.warning("provider.retry", exc_info=ConnectionError(f"reset; token={TOKEN}"))

    output = stream.getvalue()
    assert TOKEN not in output
    assert output.count(REDACTED) >= 5
    assert "provider.refused" in output
    assert "PermissionError: 401 Unauthorized for Bearer [redacted]" in output
    assert "ConnectionError: reset; token=[redacted]" in output


def test_secret_keys_redacted_whatever_their_value() -> None:
    stream = io.StringIO()
    log = get_logger("tests.logging")
    with _logging_to(stream):
        log.info("login", token="short", password="hunter2", Authorization="Basic abc")
        log.info("counted", message_id=7, attempt=2)

    login = _one(_records(stream), "login")
    assert (login["token"], login["password"], login["Authorization"]) == (REDACTED,) * 3
    counted = _one(_records(stream), "counted")
    assert (counted["message_id"], counted["attempt"]) == (7, 2)  # numbers stay numbers


def test_standard_library_records_are_redacted() -> None:
    stream = io.StringIO()
    with _logging_to(stream):
        library = logging.getLogger("aio_pika.robust_connection")
        library.warning("connection to %s lost", f"amqp://mailer:{TOKEN}@rabbit/")
        try:
            raise OSError(f"cannot reach https://p.example/send?token={TOKEN}")
        except OSError:
            logging.getLogger("httpx").exception("request failed")

    output = stream.getvalue()
    assert TOKEN not in output
    records = _records(stream)
    lost = _one(records, f"connection to amqp://mailer:{REDACTED}@rabbit/ lost")
    assert lost["logger"] == "aio_pika.robust_connection"
    failed = _one(records, "request failed")
    assert f"OSError: cannot reach https://p.example/send?token={REDACTED}" in failed["exception"]


def test_bound_ids_are_json_fields() -> None:
    stream = io.StringIO()
    log = get_logger("tests.logging")
    with _logging_to(stream):
        bind_ids(mailing_id=5)
        log.info("mailing.started")
        bind_ids(message_id=12, client_id=3, attempt=None)
        log.info("message.sent")
        clear_ids()
        log.info("idle")

    records = _records(stream)
    started = _one(records, "mailing.started")
    assert started["mailing_id"] == 5
    assert "message_id" not in started
    sent = _one(records, "message.sent")
    assert (sent["mailing_id"], sent["message_id"], sent["client_id"]) == (5, 12, 3)
    assert "attempt" not in sent  # None is not bound
    assert not {"mailing_id", "message_id", "client_id"} & set(_one(records, "idle"))
    assert all(record["level"] == "info" and record["timestamp"] for record in records)


def test_database_password_redacted() -> None:
    database = DatabaseSettings(
        _env_file=None, database_url="postgresql+asyncpg://u:s3cretpw@127.0.0.1:1/x"
    )
    stream = io.StringIO()
    with _logging_to(stream, secrets=secret_values(database)):
        get_logger("tests.logging").warning("database.unavailable", url=database.database_url)
        logging.getLogger("sqlalchemy.pool").error("cannot reach %s", database.database_url)

    assert "s3cretpw" not in stream.getvalue()
    redacted = f"postgresql+asyncpg://u:{REDACTED}@127.0.0.1:1/x"
    unavailable, unreachable = _records(stream)
    assert unavailable["url"] == redacted
    assert unreachable["event"] == f"cannot reach {redacted}"


def test_list_fields_stay_json_arrays() -> None:
    stream = io.StringIO()
    with _logging_to(stream):
        get_logger("tests.logging").info("mailing.updated", fields=["tag"], ids=(1, 2))

    updated = _one(_records(stream), "mailing.updated")
    assert (updated["fields"], updated["ids"]) == (["tag"], [1, 2])


# --- the access line ----------------------------------------------------------------------


async def test_access_line_carries_the_ids_the_route_bound(client: httpx.AsyncClient) -> None:
    mailing = await create_mailing(client)
    stream = io.StringIO()
    with _logging_to(stream):
        response = await client.patch(f"{MAILINGS}/{mailing['id']}", json={"text": "changed"})

    assert response.status_code == 200, response.text
    done = _one(_records(stream), "request.done")
    assert (done["method"], done["status"]) == ("PATCH", 200)
    assert done["mailing_id"] == mailing["id"]


def _requests_counted(metrics: str, **labels: str) -> float:
    """``mailer_api_requests_total`` for these labels, 0 if not counted yet."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "mailer_api_requests_total" and labels == sample.labels:
                return sample.value
    return 0.0


async def test_request_that_raises_is_answered_counted_and_logged(
    client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "route": "/boom", "status": "500"}
    before = _requests_counted((await client.get("/metrics")).text, **labels)
    stream = io.StringIO()
    with _logging_to(stream):
        response = await client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; it has been logged"}
    assert _requests_counted((await client.get("/metrics")).text, **labels) == before + 1
    done = _one(_records(stream), "request.done")
    assert (done["path"], done["status"]) == ("/boom", 500)


def _logged_error(error: BaseException) -> dict[str, Any]:
    """What one library record at ERROR with ``error`` attached becomes."""
    stream = io.StringIO()
    with _logging_to(stream):
        try:
            raise error
        except BaseException:
            logging.getLogger("aiormq.connection").exception("handler failed")
    [line] = stream.getvalue().splitlines()
    found: dict[str, Any] = json.loads(line)
    return found


def test_a_lost_broker_connection_is_a_warning_without_a_traceback() -> None:
    """aiormq cancels frames in flight when RabbitMQ restarts: expected, so no traceback."""
    for error in (
        asyncio.CancelledError("Server connection reset: ConnectionResetError(104)"),
        ConnectionClosed(320, "CONNECTION_FORCED - broker forced connection closure"),
    ):
        event = _logged_error(error)
        assert event["level"] == "warning"
        assert "exception" not in event


def test_an_unexpected_error_keeps_its_traceback() -> None:
    for error in (ValueError("a bug"), asyncio.CancelledError()):
        event = _logged_error(error)
        assert event["level"] == "error"
        assert "Traceback" in event["exception"]
