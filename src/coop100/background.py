"""Work a build does on the side: threads that take only the CPU time left over,
and files written to disk ahead of the moment that needs them there.

The build keeps both cores busy with its two processes; what it does beside them
(compressing the zip's members, hashing the package it is about to replace) can
wait for an idle moment, and must not slow what it waits for. Its files must be
on disk before they are published (`fsync`); started early on a thread, that
costs the build no time when it publishes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

# The lowest priority a thread can take: the kernel runs it when nothing else wants
# the CPU (a nice 0 thread gets ~70 times its share).
NICE = 19


def lower_priority() -> None:
    """Give the calling thread the lowest CPU priority (on Linux, where a nice value is a thread's).

    Elsewhere a nice value is the whole process's, so nothing is changed.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def fsync(path: Path) -> None:
    """Write a file (or a folder's entries) to disk; return once it is there."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
