"""Materialising a running mailing's audience: one pending message per matching client."""

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import bound_contextvars

from services.planner import sql
from shared.logs import get_logger
from shared.zone_wakes import wake_zones

log = get_logger(__name__)


@dataclass(frozen=True)
class Chunk:
    """What one chunk did."""

    inserted: int
    """Messages created."""
    more: bool
    """The audience has clients left to scan."""
    total: int | None = None
    """The audience's size, when this chunk completed it."""


NOTHING = Chunk(inserted=0, more=False)


async def unmaterialised(engine: AsyncEngine) -> list[int]:
    """Ids of running mailings whose audience is not complete yet."""
    async with engine.connect() as connection:
        return list((await connection.scalars(sql.UNMATERIALISED)).all())


async def materialise_chunk(engine: AsyncEngine, mailing_id: int, chunk_size: int) -> Chunk:
    """Scan the next ``chunk_size`` clients of the audience in one transaction.

    Progress is stored with the messages, so a planner that dies mid-way, or another replica,
    resumes after the last client scanned; ``ON CONFLICT DO NOTHING`` makes a repeat harmless.
    A mailing locked by another replica, cancelled or already complete is left alone.
    """
    with bound_contextvars(mailing_id=mailing_id):
        try:
            return await _run_chunk(engine, mailing_id, chunk_size)
        except IntegrityError:
            # A client deleted between the scan and the insert fails the foreign key; the
            # next tick scans again without it.
            log.warning("audience.chunk_retry", reason="client deleted meanwhile")
            return NOTHING


async def _run_chunk(engine: AsyncEngine, mailing_id: int, chunk_size: int) -> Chunk:
    async with engine.begin() as connection:
        claimed = (await connection.execute(sql.CLAIM_AUDIENCE, {"mailing_id": mailing_id})).first()
        if claimed is None:
            return NOTHING
        scan = (
            await connection.execute(
                sql.MATERIALISE_CHUNK,
                {
                    "mailing_id": mailing_id,
                    "done_id": claimed.done_id,
                    "until_id": claimed.until_id,
                    "chunk_size": chunk_size,
                },
            )
        ).one()
        await wake_zones(connection, ((mailing_id, timezone) for timezone in scan.zones))
        # Short, or up to the last client of the audience: nothing is left to scan.
        complete = scan.scanned < chunk_size or scan.last_id == claimed.until_id
        total = await connection.scalar(
            sql.ADVANCE_AUDIENCE,
            {
                "mailing_id": mailing_id,
                "done_id": scan.last_id if scan.last_id is not None else claimed.done_id,
                "complete": complete,
            },
        )
    log.debug("audience.chunk", scanned=scan.scanned, inserted=scan.inserted)
    return Chunk(inserted=scan.inserted, more=not complete, total=total if complete else None)
