"""Liveness and readiness probes (no token: orchestrators call them)."""

import asyncio

import aio_pika
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from shared.logs import get_logger

router = APIRouter(tags=["health"])
log = get_logger(__name__)

PROBE_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Health}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database and the broker both answer; 503 names what is down."""
    database, broker = await asyncio.gather(_database_ok(request), _broker_ok(request))
    checks = {"database": _word(database), "broker": _word(broker)}
    ready = database and broker
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _word(ok: bool) -> str:
    return "ok" if ok else "unavailable"


async def _database_ok(request: Request) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readyz.database_unavailable", error=type(exc).__name__)
        return False
    return True


async def _broker_ok(request: Request) -> bool:
    # TODO(#4): reuse the API's publishing connection once it has one.
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            connection = await aio_pika.connect(request.app.state.rabbitmq_url)
            await connection.close()
    except Exception as exc:
        log.warning("readyz.broker_unavailable", error=type(exc).__name__)
        return False
    return True
