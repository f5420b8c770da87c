"""Run the SQL a visitor writes in worker processes that are killed at the time limit.

Datasette runs every query on a few threads of the server and stops it between
SQLite steps. One step (like() over a long value, printf, replace) can outlast
the limit by minutes, and even queries that do stop at the limit keep those
threads busy: three visitors looping a slow query made every table page wait.

So a request that carries SQL of the visitor's own making (`?sql=`, `_where=`)
or asks a table for a filter, sort or facet that no index answers is an ad-hoc
request. Each one checks out one of SQL_WORKERS worker processes
(coop100.site.sqlworker) for its whole life, and every query Datasette runs for
it goes to that worker, within one time budget. A worker still busy past the
budget is killed, which no SQLite call can outlive, and replaced. A request
that finds no free worker within SQL_QUEUE_WAIT_MS gets a 503 with
Retry-After. Landing, table, row, search and canned query pages never wait for
a worker: they keep Datasette's threads to themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import sqlite3
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from datasette import hookimpl
from datasette.database import QueryInterrupted, Results
from datasette.utils import tilde_decode

from coop100 import serving
from coop100.site import settings
from coop100.site.hardening import harden
from coop100.site.queries import CANNED_QUERIES

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = struct.Struct(">I")

# Table page parameters that only page through, shape or label what the table's
# indexes already give (the links the site itself shows).
_ORDINARY_ARGS = frozenset(
    {
        "_search",
        "_next",
        "_size",
        "_labels",
        "_nolabels",
        "_shape",
        "_nl",
        "_json",
        "_nofacet",
        "_nocount",
        "_nosuggest",
        "_header",
        "_dl",
        "_facet_size",
    }
)
# Filter operators an index answers as a lookup (column=value is "exact").
_LOOKUP_OPS = frozenset({"exact", "in", "isnull", "notnull"})


class Interrupted(QueryInterrupted, sqlite3.OperationalError):  # type: ignore[misc]
    """A query of an ad-hoc request stopped at its time budget.

    Both kinds of error: where Datasette expects a timeout (counts, facets) it
    is one; where it shows a query's error (`?sql=`), it is a short message
    rather than an exception that escapes to a 500 or a logged traceback.
    """

    def __init__(self, sql: str, params: Any, limit_ms: float) -> None:
        QueryInterrupted.__init__(self, sqlite3.OperationalError("interrupted"), sql, params)
        sqlite3.OperationalError.__init__(self, self.message(limit_ms))

    @staticmethod
    def message(limit_ms: float) -> str:
        return (
            f"SQL query took too long: the time limit is {limit_ms:,.0f} ms. "
            "Ask for less, or download the data and query it locally."
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Names:
    """What a request path may name: tables and views with their indexed columns."""

    indexed: dict[str, frozenset[str]]
    canned: frozenset[str]

    @classmethod
    def read(cls, db_path: Path) -> Names:
        """Read every table's and view's indexed columns (first of each index, keys, rowid)."""
        conn = sqlite3.connect(f"file:{db_path}?immutable=1", uri=True)
        try:
            indexed: dict[str, frozenset[str]] = {}
            for name, kind in conn.execute(
                "select name, type from sqlite_master where type in ('table', 'view')"
            ).fetchall():
                columns = {"rowid"} if kind == "table" else set()
                for index in conn.execute("select name from pragma_index_list(?)", [name]):
                    first = conn.execute(
                        "select name from pragma_index_info(?) where seqno = 0", [index[0]]
                    ).fetchone()
                    if first and first[0]:
                        columns.add(first[0])
                columns |= {
                    row[0]
                    for row in conn.execute(
                        "select name from pragma_table_info(?) where pk = 1", [name]
                    )
                }
                if name in serving.SORT:
                    columns.add(serving.SORT[name])
                indexed[name] = frozenset(columns)
        finally:
            conn.close()
        return cls(indexed, frozenset(CANNED_QUERIES))

    def ad_hoc(self, path: str, query_string: bytes) -> bool:
        """Say whether a request needs a worker: its SQL is the visitor's own making."""
        args = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if any(key == "_where" for key, _ in args):
            return True
        parts = [tilde_decode(part.split(".", 1)[0]) for part in path.strip("/").split("/")]
        if not parts or parts[0] != settings.DATABASE:
            return False
        if len(parts) == 1:
            return any(key == "sql" for key, _ in args)
        if len(parts) != 2 or parts[1] in self.canned or parts[1] not in self.indexed:
            # Row pages, canned queries (their parameters are bound values) and 404s.
            return False
        return any(not self._ordinary(parts[1], key, value) for key, value in args)

    def _ordinary(self, table: str, key: str, value: str) -> bool:
        indexed = self.indexed[table]
        if key in _ORDINARY_ARGS:
            return True
        if key in ("_sort", "_sort_desc"):
            return value in indexed
        if key == "_facet":
            return value in serving.column_facets(table)
        if key.startswith("_"):
            return False
        column, _, op = key.rpartition("__") if "__" in key else (key, "", "exact")
        return op in _LOOKUP_OPS and column in indexed


class Worker:
    """One sqlworker process and the pipes to it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, db_path: Path) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coop100.site.sqlworker",
            str(db_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(process)
        try:
            ready = await worker._read()
        except asyncio.IncompleteReadError:
            ready = None
        if not (isinstance(ready, tuple) and ready[0] == "ready"):
            worker.kill()
            await process.wait()
            raise RuntimeError(f"SQL worker did not start (exit code {process.returncode})")
        return worker

    async def ask(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        assert self.process.stdin is not None
        body = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_HEADER.pack(len(body)) + body)
        await self.process.stdin.drain()
        answer: tuple[Any, ...] = await self._read()
        return answer

    async def _read(self) -> Any:
        assert self.process.stdout is not None
        header = await self.process.stdout.readexactly(_HEADER.size)
        body = await self.process.stdout.readexactly(_HEADER.unpack(header)[0])
        # The worker is this package's own code: what it sends is rows and errors.
        return pickle.loads(body)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class Pool:
    """SQL_WORKERS workers: checked out one per ad-hoc request, replaced when killed."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.idle: asyncio.Queue[Worker] = asyncio.Queue()
        self.waiting = 0
        self.started = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        for _ in range(settings.SQL_WORKERS):
            self._replace()

    def _replace(self) -> None:
        task = asyncio.get_running_loop().create_task(self._spawn())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self) -> None:
        try:
            worker = await Worker.start(self.db_path)
        except (OSError, RuntimeError) as error:
            print(f"coop100: could not start an SQL worker: {error}", file=sys.stderr)
            await asyncio.sleep(1)
            self._replace()
            return
        self.idle.put_nowait(worker)
        self.started.set()

    async def acquire(self) -> Worker | None:
        """Return a free worker, or None if none comes free within SQL_QUEUE_WAIT_MS."""
        if self.waiting >= settings.SQL_QUEUE_LENGTH:
            return None
        self.waiting += 1
        try:
            if not self.started.is_set():
                # The first workers are still starting: wait for them, not the queue limit.
                await asyncio.wait_for(self.started.wait(), settings.WORKER_START_SECONDS)
            return await asyncio.wait_for(self.idle.get(), settings.SQL_QUEUE_WAIT_MS / 1000)
        except TimeoutError:
            return None
        finally:
            self.waiting -= 1

    def release(self, worker: Worker, rest: float = 0) -> None:
        """Give a worker back, after rest seconds."""
        if rest <= 0:
            self.idle.put_nowait(worker)
            return
        loop = asyncio.get_running_loop()
        loop.call_later(rest, self.idle.put_nowait, worker)

    def discard(self, worker: Worker) -> None:
        """Kill a worker that overran or failed, and start its replacement."""
        worker.kill()
        task = asyncio.get_running_loop().create_task(worker.process.wait())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._replace()


@dataclass
class Lease:
    """One ad-hoc request's worker and the time its queries have left."""

    pool: Pool
    worker: Worker | None
    deadline: float
    # `?sql=` pages show a query's error themselves; other pages (a table with
    # `_where=`) would turn a timeout into an exception and a logged traceback,
    # so for them the guard answers and cancels Datasette's work instead.
    shows_errors: bool
    # Seconds spent waiting for the worker's answers, and when the request began.
    in_worker: float = 0.0
    # Values its queries returned: what the server then renders.
    values: int = 0
    began: float = field(default_factory=time.monotonic)
    # Set once the request's budget is spent on a page that does not show errors.
    spent: asyncio.Event = field(default_factory=asyncio.Event)
    # Whether the response has begun: a CSV stream (`_stream=on`) writes a
    # timeout into its last line, as Datasette does with its other errors.
    started: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def rest(self) -> float:
        """Seconds the worker rests after this request (settings.AD_HOC_REST_FACTOR)."""
        if self.values < settings.AD_HOC_REST_VALUES:
            return 0.0
        busy = time.monotonic() - self.began - self.in_worker - settings.AD_HOC_FREE_MS / 1000
        return min(busy * settings.AD_HOC_REST_FACTOR, settings.AD_HOC_REST_MAX_MS / 1000)

    async def out_of_time(self, sql: str, params: Any, limit_ms: float) -> NoReturn:
        """Raise the timeout where the page shows it; else wait to be cancelled."""
        if self.shows_errors or self.started:
            raise Interrupted(sql, params, limit_ms)
        self.spent.set()
        await asyncio.Future()  # cancelled by guard_sql_requests, which answers
        raise AssertionError("unreachable")


_LEASE: ContextVar[Lease | None] = ContextVar("coop100_sql_lease", default=None)
# Builds sqlite3.Row objects for rows that crossed the pipe, so Datasette sees
# exactly what its own connections return (names, duplicates, JSON encoding).
_ROWS = sqlite3.connect(":memory:", check_same_thread=False)


def _as_rows(rows: list[tuple[Any, ...]], description: Any) -> list[sqlite3.Row]:
    if not description:
        return []
    names = ", ".join('null as "{}"'.format(d[0].replace('"', '""')) for d in description)
    cursor = _ROWS.execute(f"select {names}")
    return [sqlite3.Row(cursor, row) for row in rows]


class Guard:
    """The worker pool of one served database, and Datasette's execute routed to it."""

    def __init__(self, datasette: Any, db_path: Path) -> None:
        self.datasette = datasette
        self.names = Names.read(db_path)
        self.pool = Pool(db_path)
        db = datasette.get_database(settings.DATABASE)
        own_execute = db.execute

        async def execute(
            sql: str,
            params: Any = None,
            truncate: bool = False,
            custom_time_limit: int | None = None,
            page_size: int | None = None,
            log_sql_errors: bool = True,
        ) -> Results:
            lease = _LEASE.get()
            if lease is None:
                return await own_execute(
                    sql,
                    params,
                    truncate=truncate,
                    custom_time_limit=custom_time_limit,
                    page_size=page_size,
                    log_sql_errors=log_sql_errors,
                )
            return await self.run(lease, sql, params, truncate, custom_time_limit, page_size)

        db.execute = execute

    async def run(
        self,
        lease: Lease,
        sql: str,
        params: Any,
        truncate: bool,
        custom_time_limit: int | None,
        page_size: int | None,
    ) -> Results:
        """Run one query of an ad-hoc request on its worker, as Database.execute would."""
        ds = self.datasette
        # A plain dict or list crosses the pipe (canned queries' MagicParameters do not).
        if isinstance(params, Mapping):
            params = dict(params)
        elif params is not None:
            params = list(params)
        async with lease.lock:
            left_ms = (lease.deadline - time.monotonic()) * 1000
            limit_ms = min(ds.sql_time_limit_ms, custom_time_limit or ds.sql_time_limit_ms)
            limit_ms = min(limit_ms, left_ms)
            worker = lease.worker
            if worker is None or limit_ms <= 0:
                await lease.out_of_time(sql, params, ds.sql_time_limit_ms)
            # Datasette's own rule: one row more than it shows, to tell it was truncated.
            max_rows = ds.max_returned_rows
            if max_rows == (page_size or ds.page_size):
                max_rows += 1
            fetch = max_rows + 1 if truncate and max_rows else None
            asked = time.monotonic()
            try:
                answer = await asyncio.wait_for(
                    worker.ask((sql, params, limit_ms, fetch)),
                    (limit_ms + settings.SQL_KILL_GRACE_MS) / 1000,
                )
            except (
                TimeoutError,
                OSError,
                asyncio.IncompleteReadError,
                asyncio.CancelledError,
            ) as error:
                # Past the budget, broken, or its visitor went away: its answer
                # (if any ever comes) must not reach the next request.
                lease.worker = None
                self.pool.discard(worker)
                if isinstance(error, asyncio.CancelledError):
                    raise
                if not isinstance(error, TimeoutError):
                    raise sqlite3.OperationalError("The query ended its worker process.") from None
                await lease.out_of_time(sql, params, limit_ms)
            finally:
                lease.in_worker += time.monotonic() - asked
        if answer[0] == "error":
            _, kind, message = answer
            if kind == "interrupted" and custom_time_limit and limit_ms < left_ms:
                # A count or facet stopped at its own shorter limit: Datasette
                # expects that and shows the page without it.
                raise Interrupted(sql, params, limit_ms)
            if kind == "interrupted":
                await lease.out_of_time(sql, params, limit_ms)
            raise sqlite3.OperationalError(message)
        _, rows, description = answer
        lease.values += len(rows) * len(description or ())
        truncated = bool(fetch) and len(rows) > max_rows
        return Results(
            _as_rows(rows[:max_rows] if fetch else rows, description), truncated, description
        )


_GUARDS: dict[int, Guard | None] = {}


def _guard(datasette: Any) -> Guard | None:
    """Return datasette's guard, set up on its first request (inside the server's loop)."""
    key = id(datasette)
    if key not in _GUARDS:
        db = datasette.databases.get(settings.DATABASE)
        path = getattr(db, "path", None)
        _GUARDS[key] = Guard(datasette, Path(path)) if path else None
    return _GUARDS[key]


async def _answer(scope: Scope, send: Send, status: int, message: str) -> None:
    """Answer with a short message: JSON for .json URLs, else plain text."""
    path = scope.get("path", "")
    if path.endswith(".json"):
        body = json.dumps({"ok": False, "error": message, "status": status}).encode()
        kind = b"application/json; charset=utf-8"
    else:
        body = message.encode()
        kind = b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 503:
        headers.append((b"retry-after", str(settings.RETRY_AFTER_SECONDS).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_BUSY = (
    "Too many queries are running at the moment; "
    f"try again in {settings.RETRY_AFTER_SECONDS} seconds."
)


@hookimpl(specname="asgi_wrapper")  # type: ignore[untyped-decorator]
def guard_sql_requests(datasette: Any) -> Callable[[App], App]:
    """Send each ad-hoc request's queries to a worker process of its own (see module doc)."""

    def wrap(app: App) -> App:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            guard = _guard(datasette) if scope["type"] == "http" else None
            if guard is None or not guard.names.ad_hoc(
                scope.get("path", ""), scope.get("query_string", b"")
            ):
                await app(scope, receive, send)
                return
            worker = await guard.pool.acquire()
            if worker is None:
                await _answer(scope, send, 503, _BUSY)
                return
            budget = (datasette.sql_time_limit_ms + settings.SQL_KILL_GRACE_MS) / 1000
            path = scope.get("path", "").strip("/").split(".", 1)[0]
            lease = Lease(
                guard.pool,
                worker,
                time.monotonic() + budget,
                shows_errors=tilde_decode(path) == settings.DATABASE,
            )

            async def send_started(message: MutableMapping[str, Any]) -> None:
                lease.started = True
                await send(message)

            token = _LEASE.set(lease)
            # A task copies the context: every query of the page sees the lease.
            page = asyncio.ensure_future(app(scope, receive, send_started))
            spent = asyncio.ensure_future(lease.spent.wait())
            try:
                await asyncio.wait({page, spent}, return_when=asyncio.FIRST_COMPLETED)
                if not page.done():
                    page.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await page
                    await _answer(
                        scope, send, 400, Interrupted.message(datasette.sql_time_limit_ms)
                    )
                else:
                    page.result()
            finally:
                # Also when the visitor went away and this request was cancelled.
                spent.cancel()
                page.cancel()
                # Let the page's query give its worker back, or kill it, first.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(page, return_exceptions=True)
                _LEASE.reset(token)
                if lease.worker is not None:
                    guard.pool.release(lease.worker, lease.rest())

        return guarded

    return wrap


# -- every connection ------------------------------------------------------------

# Datasette's own bookkeeping database, which it writes to, and the scratch
# in-memory connection /-/versions creates a table in (not served without --memory).
_INTERNAL = "_internal"
_MEMORY = "_memory"


@hookimpl(specname="prepare_connection")  # type: ignore[untyped-decorator]
def harden_connections(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    """Harden every connection to a published database and map its file into memory."""
    if database == _INTERNAL:
        return
    if database != _MEMORY:
        # Pages are read from the mapped file instead of copied through a read()
        # call each: a search touching a million rows takes about half the time.
        conn.execute(f"pragma mmap_size = {settings.MMAP_BYTES}")
    harden(conn, read_only=database != _MEMORY)
