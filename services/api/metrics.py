"""Prometheus metrics of the API: requests by route and status, and their latency."""

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from shared.logs import bind_ids, clear_ids, get_logger

REQUESTS = Counter(
    "mailer_api_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "mailer_api_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)

log = get_logger(__name__)


def _route_template(request: Request) -> str:
    # The matched route's template, never the raw path: one series per route, not one per id.
    # (The router records the route in the scope; the template it keeps is relative to the
    # prefix it was included under.)
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def observe(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Per request: fresh log context, one access line, and the two metrics."""
    clear_ids()
    bind_ids(method=request.method, path=request.url.path)
    started = time.perf_counter()
    response = await call_next(request)
    elapsed_s = time.perf_counter() - started
    route = _route_template(request)
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    LATENCY.labels(request.method, route).observe(elapsed_s)
    log.info("request.done", status=response.status_code, duration_ms=round(elapsed_s * 1000, 1))
    return response


async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
