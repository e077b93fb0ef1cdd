"""Awaiting an outcome with a bound, never sleeping and hoping (STYLE habit 9)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout_s: float = 5.0,
    interval_s: float = 0.02,
) -> T:
    """Ask ``probe`` until ``done`` holds, for at most ``timeout_s``; the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s; last seen: {value!r}")
        await asyncio.sleep(interval_s)
