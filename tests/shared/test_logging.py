"""Structured logs: tokens never reach them, bound ids always do (SPEC §4, §7)."""

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from services.api.app import create_app
from shared.logs import REDACTED, bind_ids, clear_ids, configure_logging, get_logger
from shared.settings import ApiSettings, BrokerSettings, DatabaseSettings

TOKEN = "log-test-token-7d41c0e9b2"
_TOUCHED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@contextmanager
def _logging_to(stream: io.StringIO, log_format: str = "json") -> Iterator[None]:
    """Logging configured as a service does, into ``stream``; the previous state after."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_named = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in _TOUCHED_LOGGERS
    }
    saved_structlog = structlog.get_config() if structlog.is_configured() else None
    configure_logging(level="INFO", log_format=log_format, secrets=[TOKEN], stream=stream)
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
    application = create_app(
        ApiSettings(api_token=SecretStr(TOKEN)),
        DatabaseSettings(database_url=database_url),
        BrokerSettings(),
    )

    async def boom() -> None:
        raise RuntimeError(f"provider said: token {TOKEN} is expired")

    application.add_api_route("/boom", boom)
    async with LifespanManager(application):
        yield application


async def test_token_never_logged_by_requests(app: FastAPI) -> None:
    stream = io.StringIO()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    right = {"Authorization": f"Bearer {TOKEN}"}
    with _logging_to(stream):
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            responses = [
                await client.get("/api/v1/clients", headers=right),
                await client.get("/api/v1/clients", headers={"Authorization": "Bearer nope"}),
                await client.get("/api/v1/clients", params={"token": TOKEN}),
                await client.get("/api/v1/stats", params={"access_token": TOKEN}, headers=right),
                await client.get(f"/api/v1/clients/{TOKEN}", headers=right),
                await client.get("/boom"),
            ]

    assert [r.status_code for r in responses] == [200, 401, 401, 200, 422, 500]
    assert all(TOKEN not in r.text for r in responses)
    output = stream.getvalue()
    assert TOKEN not in output
    records = _records(stream)
    done = [record for record in records if record["event"] == "request.done"]
    assert [record["status"] for record in done][:5] == [200, 401, 401, 200, 422]
    # The token in a path reaches the line only as the marker.
    assert done[4]["path"] == f"/api/v1/clients/{REDACTED}"
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


def test_logging_state_is_restored() -> None:
    root = logging.getLogger()
    before = root.handlers[:]

    with _logging_to(io.StringIO()):
        assert root.handlers != before

    assert root.handlers == before
