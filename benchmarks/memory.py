"""The resident memory of a process and all its descendants, summed, sampled over time.

`ru_maxrss` (of RUSAGE_CHILDREN, or the usage wait4 returns) is the peak of the
largest single process of a tree, not of the tree: a build that hands its rows to
a child process (the SQLite loader) would look half its size. TreeSampler reads
VmRSS of the process and of every descendant (/proc/<pid>/task/*/children) about
20 times a second and keeps the sums, so a stage's peak is the peak of the sum.

Pages two processes share (a fork's copy-on-write pages, a file both map) count
once per process: the sum is an upper bound, never an under-count.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType

PROC = Path("/proc")
INTERVAL = 0.05  # seconds: ~20 samples a second


def _vmrss_kb(pid: int) -> int:
    """VmRSS of pid in KiB; 0 once it has exited (a zombie has no VmRSS line)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def tree_rss_kb(pid: int) -> int:
    """The summed VmRSS (KiB) of pid and all its descendants, as they stand now."""
    total, seen, todo = 0, set(), [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _vmrss_kb(current)
        todo += _children(current)
    return total


def available() -> bool:
    """Whether this system shows process trees as TreeSampler reads them (Linux /proc)."""
    return (PROC / str(os.getpid()) / "task" / str(os.getpid()) / "children").exists()


class TreeSampler:
    """Sample tree_rss_kb(pid) on a thread until stopped; a context manager."""

    def __init__(self, pid: int, interval: float = INTERVAL) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (time.perf_counter(), KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tree-rss")

    def sample(self) -> None:
        """Take one sample now (a short stage may fall between two of the thread's)."""
        self.samples.append((time.perf_counter(), tree_rss_kb(self.pid)))

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> TreeSampler:
        if available():
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def peak_mb(self, since: float = 0.0, until: float = float("inf")) -> float | None:
        """The peak of the sums sampled between since and until (perf_counter), in MB."""
        window = [kb for at, kb in list(self.samples) if since <= at <= until]
        return round(max(window) / 1024, 1) if window else None
