"""CPU time and memory of a process tree, read from /proc (Linux only).

CPU is ``utime + stime`` from ``/proc/<pid>/stat`` (clock ticks, all threads, including exited
threads) summed over the process and its live descendants (uvicorn workers). As a finer-grained
cross-check, the on-CPU nanoseconds of every live thread (``/proc/<pid>/task/*/schedstat``) are
summed too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSample", "all_ticks", "cpu_sample", "descendants", "other_cpu_s", "rss_bytes"]

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds consumed so far by a process tree."""

    ticks_s: float  # utime + stime from /proc/<pid>/stat, in seconds (resolution 1/CLK_TCK)
    schedstat_s: float  # sum of live threads' on-CPU time from schedstat (ns resolution)
    pids: tuple[int, ...]

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(self.ticks_s - other.ticks_s, self.schedstat_s - other.schedstat_s, self.pids)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            kids.extend(int(x) for x in text.split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return _children_by_scan(pid)
    return kids


def _children_by_scan(pid: int) -> list[int]:
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(name))
    return kids


def descendants(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    found = [pid]
    index = 0
    while index < len(found):
        found.extend(_children(found[index]))
        index += 1
    return found


def _stat_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def _schedstat_ns(pid: int) -> int:
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def cpu_sample(pid: int) -> CpuSample:
    """CPU consumed so far by ``pid`` and its live descendants."""
    ticks = 0
    ns = 0
    pids = descendants(pid)
    for p in pids:
        try:
            ticks += _stat_ticks(p)
        except OSError:
            continue
        ns += _schedstat_ns(p)
    return CpuSample(ticks / CLK_TCK, ns / 1e9, tuple(pids))


def rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of ``pid`` plus its live descendants."""
    total = 0
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def all_ticks() -> dict[int, int]:
    """utime + stime (clock ticks) of every process now visible in /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                out[int(name)] = _stat_ticks(int(name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def other_cpu_s(before: dict[int, int], after: dict[int, int], exclude: set[int]) -> float:
    """CPU seconds used between two :func:`all_ticks` snapshots by processes not in ``exclude``.

    A machine-noise indicator: processes that started and ended between the snapshots are missed.
    """
    ticks = sum(t - before.get(pid, 0) for pid, t in after.items() if pid not in exclude)
    return max(0, ticks) / CLK_TCK
