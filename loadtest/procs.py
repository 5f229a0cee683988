"""What the benchmarks read of their processes in /proc: CPU, memory, children, placement."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def descendants(pid: int) -> set[int]:
    """The processes below `pid` (its children, theirs, ...), not `pid` itself."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    tree, grew = {pid}, True
    while grew:
        below = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    return tree - {pid}


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and every process below it (a server's workers)."""
    total = 0.0
    for member in {pid, *descendants(pid)}:
        with contextlib.suppress(OSError):
            total += cpu_seconds(member)
    return total


def pin(pid: int, cpu: int) -> None:
    """Every thread of `pid` onto one CPU (sched_setaffinity of a pid moves one thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), {cpu})
