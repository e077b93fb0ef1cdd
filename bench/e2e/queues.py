"""Where the backlog waits: ready messages in the work, results and retry queues over a run.

A stage that cannot keep up leaves its input queue growing: work piling up means the senders
are the limit, results piling up the status writer, and both near empty the planner, which
produces the work. Read with a passive declare once a second (cheaper than ``rabbitmqctl``,
which starts an Erlang VM per call); it counts ready messages, not those a consumer holds.
"""

import asyncio
import statistics
import time
from typing import Any

import aio_pika

from shared import topology

INTERVAL_S = 1.0
RETRY = "retry"
_WATCHED = {
    "work": (topology.WORK_QUEUE,),
    "results": (topology.RESULTS_QUEUE,),
    RETRY: tuple(topology.retry_queue(delay_s) for delay_s in topology.RETRY_DELAYS_S),
}


async def sample(url: str, series: list[tuple[float, dict[str, int]]]) -> None:
    """Append ``(seconds since the start, ready messages by stage)`` until cancelled."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        started = time.monotonic()
        while True:
            depths = {}
            for stage, names in _WATCHED.items():
                counts = []
                for name in names:
                    queue = await channel.declare_queue(name, passive=True)
                    counts.append(queue.declaration_result.message_count or 0)
                depths[stage] = sum(counts)
            series.append((round(time.monotonic() - started, 1), depths))
            await asyncio.sleep(INTERVAL_S)


def summarize(series: list[tuple[float, dict[str, int]]]) -> dict[str, Any]:
    """Mean and highest ready count of each stage's queue over the samples."""
    if not series:
        return {}
    return {
        stage: {
            "mean": round(statistics.fmean(depths[stage] for _, depths in series)),
            "max": max(depths[stage] for _, depths in series),
        }
        for stage in _WATCHED
    } | {"samples": len(series)}
