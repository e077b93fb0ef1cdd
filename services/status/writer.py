"""The database side of a batch: one transaction per write, errors translated here."""

from sqlalchemy.ext.asyncio import AsyncEngine

from services.status.errors import translate
from services.status.merge import Columns
from services.status.sql import Written, finish_mailings, write_results


class Writer:
    """Writes batches and finishes mailings through one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, batch: Columns) -> Written:
        """Write one batch in one transaction; :class:`StatusError` if it did not commit."""
        try:
            async with self._engine.begin() as connection:
                return await write_results(connection, batch)
        except Exception as exc:
            raise translate(exc) from exc

    async def finish(self, mailing_ids: list[int]) -> list[int]:
        """Finish the mailings that are done, in a transaction of its own; their ids."""
        try:
            async with self._engine.begin() as connection:
                return await finish_mailings(connection, mailing_ids)
        except Exception as exc:
            raise translate(exc) from exc
