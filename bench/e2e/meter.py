"""CPU seconds and memory of every process that takes part in a run, over one window.

The window is the mailing's: from just before it is created to the moment it is seen
finished. Each service is one process (the Supervisor knows its pid); PostgreSQL and RabbitMQ
are measured too, because on a machine of two cores they compete with the services, and
``machine`` is everything the cores did, so that what is left over (another job on the
machine) shows up instead of skewing the figures unseen.
"""

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.e2e import procstat

PidSource = Callable[[], list[int]]
RSS_SAMPLE_INTERVAL_S = 0.5
_MIB = 1024


@dataclass
class _Watched:
    pids: PidSource
    memory: bool
    """Whether RSS means anything here (it does not for PostgreSQL's shared buffers)."""
    high_water: bool
    """Whether the kernel's peak (VmHWM) is this run's: only for processes the run started;
    RabbitMQ's node has been up for hours, and its peak is its lifetime's."""
    cpu_at_start: dict[int, float] = field(default_factory=dict)
    rss_kib: list[int] = field(default_factory=list)


class ProcessMeter:
    """Snapshots CPU times at :meth:`start` and :meth:`stop`, samples RSS in between."""

    def __init__(self, services: Mapping[str, int], groups: Mapping[str, PidSource]) -> None:
        self._watched = {
            name: _Watched(_single(pid), memory=True, high_water=True)
            for name, pid in services.items()
        }
        for name, pids in groups.items():
            self._watched[name] = _Watched(pids, memory=name != "postgres", high_water=False)
        self._started = 0.0
        self._busy_at_start = 0.0
        self._sampler: asyncio.Task[None] | None = None

    def start(self) -> None:
        for watched in self._watched.values():
            watched.cpu_at_start = _cpu_by_pid(watched.pids())
        self._busy_at_start = procstat.machine_busy_s()
        self._started = time.monotonic()
        self._sampler = asyncio.create_task(self._sample_rss(), name="bench-rss")

    async def stop(self, messages: int) -> dict[str, dict[str, Any]]:
        """Each process's figures over the window; ``messages`` scales CPU per 1,000."""
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        wall_s = time.monotonic() - self._started
        figures = {name: self._figures(w, messages) for name, w in self._watched.items()}
        busy_s = procstat.machine_busy_s() - self._busy_at_start
        known_s = sum(f["cpu_s"] for f in figures.values())
        cpus = procstat.machine().cpus
        figures["machine"] = {
            "cpu_s": round(busy_s, 2),
            "cpu_s_per_1000_messages": _per_thousand(busy_s, messages),
            "utilisation": round(busy_s / (wall_s * cpus), 3) if wall_s else 0.0,
            "unaccounted_cpu_s": round(max(busy_s - known_s, 0.0), 2),
        }
        return figures

    def _figures(self, watched: _Watched, messages: int) -> dict[str, Any]:
        now = _cpu_by_pid(watched.pids())
        # A process that started inside the window counts from zero; one that ended inside it
        # is lost (PostgreSQL backends of a pool rarely do), so a group's figure is a floor.
        cpu_s = sum(total - watched.cpu_at_start.get(pid, 0.0) for pid, total in now.items())
        result: dict[str, Any] = {
            "cpu_s": round(cpu_s, 2),
            "cpu_s_per_1000_messages": _per_thousand(cpu_s, messages),
        }
        if watched.memory and watched.rss_kib:
            peaks = [procstat.memory_kib(pid, "VmHWM") or 0 for pid in watched.pids()]
            if not watched.high_water:
                peaks = []
            result |= {
                "rss_start_mib": round(watched.rss_kib[0] / _MIB, 1),
                "rss_end_mib": round(watched.rss_kib[-1] / _MIB, 1),
                # VmHWM is the kernel's own high-water mark, finer than any sampling.
                "rss_peak_mib": round(max(max(watched.rss_kib), sum(peaks)) / _MIB, 1),
            }
        return result

    async def _sample_rss(self) -> None:
        memory_watched = [w for w in self._watched.values() if w.memory]
        while True:
            for watched in memory_watched:
                rss = [procstat.memory_kib(pid, "VmRSS") for pid in watched.pids()]
                watched.rss_kib.append(sum(kib for kib in rss if kib is not None))
            await asyncio.sleep(RSS_SAMPLE_INTERVAL_S)


async def busy_fraction(seconds: float) -> float:
    """How busy the machine's cores are over ``seconds``, 0 to 1: taken just before the
    mailing, with the stack idle, it shows whether something else was running."""
    busy_at_start, started = procstat.machine_busy_s(), time.monotonic()
    await asyncio.sleep(seconds)
    busy_s = procstat.machine_busy_s() - busy_at_start
    return round(busy_s / ((time.monotonic() - started) * procstat.machine().cpus), 3)


def _single(pid: int) -> PidSource:
    return lambda: [pid]


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    found = {pid: procstat.cpu_times(pid) for pid in pids}
    return {pid: times.total_s for pid, times in found.items() if times is not None}


def _per_thousand(cpu_s: float, messages: int) -> float:
    return round(cpu_s / messages * 1000, 3) if messages else 0.0


def postgres_pids(postmaster: int | None) -> PidSource:
    """The server's processes: the postmaster and all its children (backends, walwriter,
    autovacuum…); none if the postmaster is unknown."""

    def pids() -> list[int]:
        if postmaster is None:
            return []
        return [postmaster, *procstat.children_of(postmaster)]

    return pids


def rabbitmq_pids() -> PidSource:
    """The Erlang VM of the local RabbitMQ node, found now and kept.

    ``rabbitmqctl`` runs an Erlang VM of its own, also called ``beam.smp``, for each command
    (the tests run it for every vhost): the node is the oldest one, started with the server.
    """
    vms = {pid: procstat.start_ticks(pid) for pid in procstat.pids_named("beam.smp")}
    started = {pid: ticks for pid, ticks in vms.items() if ticks is not None}
    node = [min(started, key=started.__getitem__)] if started else []
    return lambda: node
