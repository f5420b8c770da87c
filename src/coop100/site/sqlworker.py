"""A worker process that runs a visitor's SQL for coop100.site.sqlguard.

`python -m coop100.site.sqlworker DATABASE` opens the database read-only and
hardened, says it is ready, then answers one request at a time on stdin/stdout:
each message a 4-byte big-endian length and a pickle. It runs at a lower CPU
priority, with its own SQLite heap and a cap on its private memory, so the
server may kill it at any moment: nothing it holds is shared.
"""

from __future__ import annotations

import os
import pickle
import resource
import sqlite3
import struct
import sys
import time
from typing import Any, BinaryIO

from coop100.site import settings
from coop100.site.hardening import harden

_HEADER = struct.Struct(">I")


def send(stream: BinaryIO, message: Any) -> None:
    """Write one message: its length, then its pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """Read one message, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    return pickle.loads(stream.read(_HEADER.unpack(header)[0]))


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else 8


def run(
    conn: sqlite3.Connection,
    sql: str,
    params: Any,
    time_limit_ms: float,
    max_rows: int | None,
) -> tuple[Any, ...]:
    """Run one query; answer ("ok", rows, description) or ("error", kind, message).

    Stops at time_limit_ms between SQLite steps as Datasette does, at max_rows
    rows, and refuses a result of more than MAX_RESULT_BYTES.
    """
    deadline = time.perf_counter() + time_limit_ms / 1000
    conn.set_progress_handler(lambda: time.perf_counter() >= deadline, 1000)
    try:
        cursor = conn.execute(sql, params if params is not None else {})
        rows: list[tuple[Any, ...]] = []
        size = cells = 0
        # One row at a time: 200 columns of 100 kB values make a 20 MB row.
        for row in cursor:
            size += sum(_size(value) for value in row)
            cells += len(row)
            if size > settings.MAX_RESULT_BYTES or cells > settings.MAX_RESULT_CELLS:
                return (
                    "error",
                    "too-big",
                    f"The result is larger than {settings.MAX_RESULT_BYTES:,} bytes or "
                    f"{settings.MAX_RESULT_CELLS:,} values: select fewer rows or columns, "
                    "or shorter values.",
                )
            rows.append(row)
            if len(rows) == max_rows:
                break
        return ("ok", rows, cursor.description)
    except MemoryError:
        return (
            "error",
            "memory",
            f"The query needs more than the {settings.WORKER_HEAP_BYTES // 2**20} MB "
            "of memory one query may use.",
        )
    except sqlite3.Error as error:
        if error.args == ("interrupted",):
            return ("error", "interrupted", "interrupted")
        return ("error", "sqlite", str(error))
    finally:
        conn.set_progress_handler(None, 1000)


def main(path: str) -> None:
    """Open the database at path and answer requests until stdin closes."""
    os.nice(settings.WORKER_NICE)
    memory = settings.WORKER_MEMORY_BYTES
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    # Datasette's one SQL function, registered the same way on its connections.
    # Lazy: imported once the worker's priority and memory limit are set.
    from datasette.utils import escape_fts

    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    conn.text_factory = lambda b: str(b, "utf-8", "replace")
    conn.execute(f"pragma mmap_size = {settings.MMAP_BYTES}")
    # A sort spills to temporary files once it outgrows the page cache, whatever
    # temp_store says; with a cache as large as the heap it fails for lack of
    # memory first, and no visitor's query writes to the disk.
    conn.execute(f"pragma cache_size = -{settings.WORKER_HEAP_BYTES // 1024}")
    harden(conn, heap_limit=settings.WORKER_HEAP_BYTES)
    conn.create_function("escape_fts", 1, escape_fts)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    send(stdout, ("ready", os.getpid()))
    while (request := receive(stdin)) is not None:
        send(stdout, run(conn, *request))


if __name__ == "__main__":
    main(sys.argv[1])
