"""One structured-logging set-up for every service.

structlog renders one line per event; the standard library's records (uvicorn, alembic,
aio-pika) go through the same processors, so they are redacted and formatted alike. Ids are
bound with :func:`bind_ids` (context variables), so every line of one request or message
carries them without passing them around.
"""

import asyncio
import logging
import sys
from collections.abc import Iterable
from typing import Any

import structlog
from aiormq.exceptions import AMQPConnectionError, ConnectionClosed
from structlog.typing import EventDict, Processor

REDACTED = "[redacted]"

# Libraries that write a line of prose per request or per scheduler run at INFO; our own
# events (attempt.*, tick.*) say more, so theirs start at WARNING.
_CHATTY = ("httpx", "apscheduler")

# Keys whose value is a credential whatever it holds.
_SECRET_KEYS = frozenset({"authorization", "token", "api_token", "provider_token", "password"})
# Values that cannot hold a secret's text, left as they are (numbers stay numbers).
_PLAIN = (int, float)


class SecretRedactor:
    """Replaces every known secret value, wherever it appears in an event, with a marker.

    Redacting by value as well as by key catches a token that reaches a log line inside an
    exception text, a URL or a header dump.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would blank out ordinary words; real tokens are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        # Whether a key names a credential, by key: a line has a handful of keys, always the
        # same few, and this runs for every line a sender writes (one per message).
        self._is_secret_key: dict[str, bool] = {}

    def __call__(self, _logger: Any, _method: str, event: EventDict) -> EventDict:
        for key, value in event.items():
            # "_record" and the like are structlog's own plumbing, not output.
            plain = key.startswith("_") or value is None or isinstance(value, _PLAIN)
            if not plain or self._secret_key(key):
                event[key] = self._clean(key, value)
        return event

    def _secret_key(self, key: str) -> bool:
        # Remembered for an event's own keys only: they are a few names, always the same;
        # keys inside values (headers, payloads) are anyone's and would grow the dict.
        known = self._is_secret_key.get(key)
        if known is None:
            known = self._is_secret_key[key] = key.lower() in _SECRET_KEYS
        return known

    def _clean(self, key: str, value: Any) -> Any:
        if key.lower() in _SECRET_KEYS:
            return REDACTED
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._clean("", item) for item in value]
        if value is None or isinstance(value, _PLAIN) or not self._secrets:
            return value
        text = str(value)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class ConnectionLossFilter(logging.Filter):
    """Logs a lost broker connection as the expected trouble it is: WARNING, no traceback.

    When RabbitMQ restarts, aiormq fails every frame in flight and cancels the tasks waiting
    on them; aiormq and aio-pika then log each one with a full traceback at ERROR,
    dozens of lines per message in flight. The connection comes back by itself and the
    messages are delivered again, so one line each, without the traceback, says all of it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _is_connection_loss(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _is_connection_loss(error: BaseException | None) -> bool:
    if isinstance(error, (AMQPConnectionError, ConnectionClosed)):
        return True
    # A task cancelled by aiormq for a closed connection carries the reason; a plain task
    # cancellation (a stop) carries none and keeps its traceback.
    return isinstance(error, asyncio.CancelledError) and "connection" in str(error).lower()


def _drop_color_message(_logger: Any, _method: str, event: EventDict) -> EventDict:
    # uvicorn adds a copy of its message with ANSI colour codes for its own formatter.
    event.pop("color_message", None)
    return event


def configure_logging(
    *,
    level: str = "INFO",
    log_format: str = "json",
    secrets: Iterable[str] = (),
    stream: Any = None,
) -> None:
    """Route structlog and stdlib logging to one stream, with secrets redacted."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _drop_color_message,
        SecretRedactor(secrets),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    # No caller lookup (a walk up the stack per record) nor process and thread names: no line
    # shows them. The logging HOWTO's own advice for a logger on a hot path.
    logging._srcfile = None  # the documented switch has no public name
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing = False, False, False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(ConnectionLossFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs its own handlers; let its records reach ours instead.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for one module; events carry whatever ids are bound at the time."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def bind_ids(**ids: int | str | None) -> None:
    """Bind ``mailing_id`` / ``message_id`` / ``client_id`` (and the like) for what follows."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})


def clear_ids() -> None:
    """Forget the bound ids, at the start of each request or message."""
    structlog.contextvars.clear_contextvars()
