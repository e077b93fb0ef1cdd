"""Prometheus metrics and the access log of the API, as one ASGI middleware.

A plain ASGI middleware, not ``@app.middleware("http")``: Starlette runs the route of an
``http`` middleware in a task of its own, so the ids a route binds would never reach the access
line, and a request that fails with an exception would be neither counted nor logged.
"""

import time

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import bind_ids, clear_ids, get_logger

REQUESTS = Counter(
    "mailer_api_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "mailer_api_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)

# Polled every few seconds by orchestrators and Prometheus: DEBUG, not INFO.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = get_logger(__name__)


def _route_template(scope: Scope) -> str:
    # The matched route's template, never the raw path: one series per route, not one per id.
    # (The router records the route in the scope; the template it keeps is relative to the
    # prefix it was included under.)
    return str(getattr(scope.get("route"), "path", "unmatched"))


class ObserveRequests:
    """Per request: a fresh log context, one access line, and the two metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        clear_ids()
        bind_ids(method=scope["method"], path=scope["path"])
        status = 500  # what the client gets if the app raises before answering
        started_at = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            elapsed_s = time.perf_counter() - started_at
            route = _route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed_s)
            level = log.debug if scope["path"] in _QUIET_PATHS else log.info
            level("request.done", status=status, duration_ms=round(elapsed_s * 1000, 1))


async def metrics_endpoint() -> Response:
    """The Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
