"""The build's load: in a second process fed the rows as they are written, or in the build's own."""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import subprocess
import sys
import threading
from multiprocessing import BufferTooShort
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import pyarrow as pa

from coop100.load.database import Load
from coop100.load.judge import judge
from coop100.problems import DatabaseError

# glibc's malloc serves a block this big or bigger from its own mapping, handed back
# to the system when freed. Its default threshold grows to the largest block freed
# (up to 32 MiB): then the batches the loading process receives (~13 MB each) came
# from its heap and stayed there, ~40 MB at 1M statements.
MMAP_THRESHOLD = 1 << 20


class LoadProcess:
    """A Load run by a child process, fed the rows as the build writes them.

    SQLite inserts and indexes on the second core while the build reads and
    writes on the first. Messages go over a pipe, sent by a thread from a short
    queue, so the build waits only when SQLite falls two batches behind; the
    child ends at `finish` or `abort`, or when the build dies (end of the pipe).
    """

    def __init__(self, resources: list[dict[str, Any]], db_path: Path, tmp_path: Path):
        # A fresh interpreter (not multiprocessing's spawn, which imports the
        # caller's __main__ again, nor a fork of a process running threads),
        # talking over two pipes.
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(to_child), str(from_child)],
            pass_fds=(to_child, from_child),
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)},
        )
        os.close(to_child)
        os.close(from_child)
        self._send = Connection(from_parent, readable=False)
        self._receive = Connection(to_parent, writable=False)
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=2)
        self._sender = threading.Thread(target=self._send_all, name="coop100-load-sender")
        self._sender.start()
        self._queue.put((resources, str(db_path), str(tmp_path)))
        self._closed = False

    def close(self) -> None:
        """Every row is in: the second process starts indexing and checking them now."""
        if not self._closed:
            self._closed = True
            self._queue.put(("check",))

    def add(self, table: str, rows: pa.Table) -> None:
        """Send rows of a table, in its published schema, to be inserted."""
        for batch in rows.to_batches():
            self._queue.put(("add", table, batch))

    def check(self) -> tuple[dict[str, int], list[str]]:
        """Once every row is in: index, then the rows of each table and the rules broken.

        A table whose keys repeat is not indexed and gives no counts.

        Raises:
            DatabaseError: the rows could not be loaded.
        """
        self.close()
        return cast(tuple[dict[str, int], list[str]], self._answer())

    def finish(self) -> Path:
        """Facet counts and views (stored already, once the rules held); the database
        moved into place."""
        path = Path(cast(str, self._ask("finish")))
        self._stop()
        return path

    def abort(self) -> None:
        """Stop, and delete the unfinished database."""
        if self._process.poll() is None:
            self._queue.put(("abort",))
        self._stop()

    def _stop(self) -> None:
        self._queue.put(None)
        self._sender.join()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._send.close()
        self._receive.close()

    def _send_all(self) -> None:
        broken = False  # the child is gone: drop what is left, _ask reports it
        while (message := self._queue.get()) is not None:
            if not broken:
                try:
                    if message[0] == "add":
                        command, table, batch = message
                        self._send.send((command, table))
                        self._send.send_bytes(_ipc_message(batch))
                    else:
                        self._send.send(message)
                except OSError:
                    broken = True

    def _ask(self, command: str) -> Any:
        self._queue.put((command,))
        return self._answer()

    def _answer(self) -> Any:
        try:
            kind, value = self._receive.recv()
        except (EOFError, OSError):
            self._process.wait()
            message = f"the SQLite load stopped (exit code {self._process.returncode})"
            raise DatabaseError(message) from None
        if kind == "error":
            raise DatabaseError(value)
        return value


class InlineLoad:
    """A Load run in the build's own process, behind LoadProcess's interface.

    For a small package (the real one): a second interpreter would cost more
    start-up (~0.3 s of imports) than it saves.
    """

    def __init__(self, resources: list[dict[str, Any]], db_path: Path, tmp_path: Path):
        self._load = Load(resources, db_path, tmp_path=tmp_path)
        self._broken: list[str] = []
        self._error = ""

    def add(self, table: str, rows: pa.Table | pa.RecordBatch) -> None:
        if self._broken or self._error:
            return
        try:
            for batch in rows.to_batches() if isinstance(rows, pa.Table) else [rows]:
                self._load.add(table, batch)
        except sqlite3.IntegrityError as exc:  # a duplicate key
            self._broken.append(f"{table}: {exc}")
        except (DatabaseError, sqlite3.Error) as exc:
            self._error = str(exc)

    def close(self) -> None:
        """Every row is in (`check` indexes and checks them, in this process)."""

    def check(self) -> tuple[dict[str, int], list[str]]:
        if self._error:
            raise DatabaseError(self._error)
        return judge(self._load, self._broken), self._broken

    def complete(self) -> None:
        """Load.complete: the second process does it while the build publishes."""
        self._load.complete()

    def finish(self) -> Path:
        return self._load.finish()

    def abort(self) -> None:
        self._load.abort()


_CHILD = "import sys; from coop100.load.process import serve; serve(*map(int, sys.argv[1:]))"


def _ipc_message(batch: pa.RecordBatch) -> pa.Buffer:
    """A batch in Arrow's IPC stream format, its schema included, for `_Received`."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


class _Received:
    """Batches received in Arrow's IPC format into one buffer, read where they lie.

    Pickled, each batch (~13 MB at 1M statements) was copied into fresh memory to
    be sent, read into fresh memory and copied again to be unpickled; the build's
    first process alone took ~300,000 more page faults. A batch is valid only
    until the next is received.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._buffer = bytearray()

    def batch(self) -> pa.RecordBatch:
        try:
            size = self._connection.recv_bytes_into(self._buffer)
            message = pa.py_buffer(memoryview(self._buffer)[:size])
        except BufferTooShort as exc:  # the first, or a bigger one: read whole
            data = exc.args[0]
            self._buffer = bytearray(len(data))
            message = pa.py_buffer(data)
        return pa.ipc.open_stream(message).read_next_batch()


def serve(receive_fd: int, send_fd: int) -> None:
    """The child of LoadProcess: run the InlineLoad its messages ask for."""
    receive = Connection(receive_fd, writable=False)
    pipe = Connection(send_fd, readable=False)
    resources, db_path, tmp_path = receive.recv()
    load = InlineLoad(resources, Path(db_path), Path(tmp_path))
    received = _Received(receive)
    try:
        while True:
            try:
                command, *args = receive.recv()
            except EOFError:  # the build is gone
                command = "abort"
            if command == "add":
                load.add(args[0], received.batch())
            elif command == "check":
                try:
                    judged = load.check()
                except DatabaseError as exc:
                    pipe.send(("error", str(exc)))
                else:
                    pipe.send(("ok", judged))
                    if not judged[1]:  # while the build finishes its zip and publishes
                        load.complete()
            elif command == "finish":
                pipe.send(("ok", str(load.finish())))
                return
            elif command == "abort":
                load.abort()
                return
    except Exception as exc:  # reported to the build, which says what failed
        load.abort()
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
