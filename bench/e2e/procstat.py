"""What ``/proc`` says about a process and the machine: CPU time, memory, the hardware.

Linux only, like the stack it measures. A process that has gone reads as ``None`` rather than
raising: a benchmark should report what it saw, not die on a service that just exited.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds a process has used so far, in user and in kernel mode."""

    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def cpu_times(pid: int) -> CpuTimes | None:
    """The process's utime and stime (fields 14 and 15 of ``/proc/<pid>/stat``)."""
    user, system = _stat_field(pid, 14), _stat_field(pid, 15)
    if user is None or system is None:
        return None
    return CpuTimes(user / CLOCK_TICKS_PER_S, system / CLOCK_TICKS_PER_S)


def _stat_field(pid: int, number: int) -> int | None:
    """Field ``number`` (1-based, as proc(5) counts) of ``/proc/<pid>/stat``, from field 3 on."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return int(text.rpartition(")")[2].split()[number - 3])


def parent_pid(pid: int) -> int | None:
    return _stat_field(pid, 4)


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot."""
    return _stat_field(pid, 22)


def memory_kib(pid: int, field: str) -> int | None:
    """A ``kB`` line of ``/proc/<pid>/status``: ``VmRSS`` now, ``VmHWM`` the peak so far."""
    try:
        text = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (PostgreSQL's backends are the postmaster's children)."""
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and parent_pid(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def pids_named(command: str) -> list[int]:
    """Processes whose command name (``/proc/<pid>/comm``) is ``command``."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == command:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def machine_busy_s() -> float:
    """CPU seconds every core has spent busy since boot (all of ``/proc/stat``'s first line
    except idle and iowait)."""
    fields = [int(v) for v in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user)
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / CLOCK_TICKS_PER_S


@dataclass(frozen=True)
class Machine:
    """The hardware the figures were measured on."""

    cpu_model: str
    cpus: int
    memory_gib: float

    def describe(self) -> str:
        return f"{self.cpus} x {self.cpu_model}, {self.memory_gib:.0f} GiB RAM"


def machine() -> Machine:
    cpuinfo = (_PROC / "cpuinfo").read_text()
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = (_PROC / "meminfo").read_text()
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    memory_kib_total = int(match.group(1)) if match else 0
    return Machine(
        cpu_model=models[0].strip() if models else "unknown",
        cpus=len(models) or os.cpu_count() or 0,
        memory_gib=memory_kib_total / 1024 / 1024,
    )
