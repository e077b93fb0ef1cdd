"""Liveness and readiness probes (no token: orchestrators call them)."""

import asyncio

import aio_pika
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from shared.logs import get_logger
from shared.migrate import head_revision

router = APIRouter(tags=["health"])
log = get_logger(__name__)

PROBE_TIMEOUT_S = 2.0
# Two statements: PostgreSQL resolves every table a statement names before running it, so a
# database never migrated fails the second one unless the first says the table is there.
_HAS_REVISION_TABLE = "SELECT to_regclass('alembic_version') IS NOT NULL"
_REVISION_QUERY = "SELECT version_num FROM alembic_version"


class Health(BaseModel):
    """``status`` is ``ok`` or ``unavailable``; ``checks`` says how each dependency is."""

    status: str
    checks: dict[str, str] = {}


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Health}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers at this code's schema and the broker answers.

    503 names what is wrong: ``unavailable``, or ``not migrated`` for a database that
    `mailer migrate` has not brought to this version yet.
    """
    database, broker = await asyncio.gather(_database_state(request), _broker_state(request))
    ready = database == broker == "ok"
    body = Health(
        status="ok" if ready else "unavailable", checks={"database": database, "broker": broker}
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _database_state(request: Request) -> str:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), request.app.state.engine.connect() as conn:
            revision = None
            if await conn.scalar(text(_HAS_REVISION_TABLE)):
                revision = await conn.scalar(text(_REVISION_QUERY))
    except Exception as exc:  # any failure at all means "not ready"; what it was is logged
        log.warning("readyz.database_unavailable", error=type(exc).__name__, reason=str(exc)[:200])
        return "unavailable"
    if revision != head_revision():
        log.warning("readyz.database_not_migrated", revision=revision)
        return "not migrated"
    return "ok"


async def _broker_state(request: Request) -> str:
    # A connection of its own per probe: it checks the broker now, not what a long-lived
    # robust connection last believed about it.
    connection = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            connection = await aio_pika.connect(request.app.state.rabbitmq_url)
    except Exception as exc:  # any failure at all means "not ready"; what it was is logged
        log.warning("readyz.broker_unavailable", error=type(exc).__name__)
        return "unavailable"
    finally:
        if connection is not None:
            await connection.close()
    return "ok"
