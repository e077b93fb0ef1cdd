"""Message lookups of concurrent handlers, answered by one query per short window."""

import asyncio

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.sender import sql
from services.sender.errors import LookupUnavailable
from services.sender.logic import MessageState

_DATABASE_ERRORS = (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

_Waiter = asyncio.Future[MessageState | None]


class MessageLookup:
    """Batches :meth:`find` calls: the first one opens a window, its end runs one query.

    With a prefetch of 100, a sender would otherwise run up to 100 single-row queries at once
    and hold as many pooled connections.
    """

    def __init__(self, engine: AsyncEngine, *, window_s: float, timeout_s: float) -> None:
        self._engine = engine
        self._window_s = window_s
        self._timeout_s = timeout_s
        self._waiting: dict[int, list[_Waiter]] = {}
        self._batches: set[asyncio.Task[None]] = set()
        self._window_open = False

    async def find(self, message_id: int) -> MessageState | None:
        """The message's state, None if it no longer exists; :class:`LookupUnavailable` if
        the database does not answer in time."""
        waiter: _Waiter = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(message_id, []).append(waiter)
        if not self._window_open:
            self._window_open = True
            batch = asyncio.create_task(self._run_batch())
            self._batches.add(batch)  # a strong reference until it is done
            batch.add_done_callback(self._batches.discard)
        return await waiter

    async def close(self) -> None:
        """Stop the batches in progress; their callers get :class:`LookupUnavailable`."""
        for batch in list(self._batches):
            batch.cancel()
        await asyncio.gather(*self._batches, return_exceptions=True)
        _fail(self._waiting, "lookup stopped")
        self._waiting, self._window_open = {}, False

    async def _run_batch(self) -> None:
        await asyncio.sleep(self._window_s)
        waiting, self._waiting, self._window_open = self._waiting, {}, False
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.connect() as connection:
                # One read: no BEGIN and ROLLBACK around it.
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                states = await sql.message_states(connection, list(waiting))
        except (*_DATABASE_ERRORS, TimeoutError) as exc:
            _fail(waiting, f"database unavailable: {type(exc).__name__}")
            return
        except asyncio.CancelledError:
            _fail(waiting, "lookup stopped")
            raise
        for message_id, waiters in waiting.items():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(states.get(message_id))


def _fail(waiting: dict[int, list[_Waiter]], reason: str) -> None:
    for waiters in waiting.values():
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(LookupUnavailable(reason))
