"""Load the published Data Package into SQLite: keys, indexes, full-text search, views.

The database is built from datapackage.json and its CSV resources only, never
from the records, which proves the package is enough to rebuild everything.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import BufferTooShort
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

if TYPE_CHECKING:
    import sqlite_utils

from coop100.background import fsync, lower_priority
from coop100.facets import LARGE_GROUP_ROWS, FacetRows, facet_counts, store_facet_counts
from coop100.settings import DB_NAME as DB_NAME
from coop100.settings import SORT, column_facets

DESCRIPTOR = "datapackage.json"

# Table Schema type -> SQLite column type; anything else (date, time, ...) is TEXT.
_SQLITE_TYPES = {"integer": "INTEGER", "number": "FLOAT", "boolean": "INTEGER"}
_TRUE = {"true", "True", "TRUE", "1"}
_FALSE = {"false", "False", "FALSE", "0"}
# Rows are parsed and inserted this many CSV bytes at a time, which bounds memory:
# pyarrow's CSV reader reads ahead (at 16 MiB blocks it held 257 MB of the 1M
# statements CSV). A row is at most a few tens of kilobytes (models.py's maxLength).
_BLOCK_BYTES = 1 << 20
# Rows per INSERT statement (_insert); SQLite allows 32,766 values per statement.
_ROWS_PER_INSERT = 100
# Rows of a batch the build sends (Load.add) made Python values at a time.
_ADD_ROWS = 8192
# Only for the fresh temp file load_database writes; none of these is stored in it.
_LOAD_PRAGMAS = (
    "journal_mode = off",
    "synchronous = off",
    # KiB: 64 MiB, also what an index sort holds before it merges from temp files;
    # 256 MiB took the same CPU at 1M statements and 180 MB more memory.
    "cache_size = -65536",
)

# Columns indexed for full-text search (porter stemming), per table.
FTS_COLUMNS: dict[str, tuple[str, ...]] = {
    "statements": ("text",),
    "people": ("name", "sort_name"),
    "person_names": ("name",),
    "organisations": ("name", "short_name", "former_name"),
    "sources": ("label", "title", "publisher", "note"),
    "events": ("name", "occasion", "description"),
    "affiliations": ("role", "note"),
    "participations": ("note",),
    "topics": ("label", "definition"),
}
FTS_TOKENIZER = "porter"
# Each full-text table's FTS5 settings, set before its first row. hashsize: bytes
# of index held in memory before a segment is written (FTS5's default is 1 MiB),
# automerge: segments of one size merged at once (default 4). At 1M statements,
# fed 40,000 at a time, these took the statements' index from 5.3 to 3.8 CPU
# seconds, 15 MB more memory, and left searches as fast. benchmarks/floor.py
# rebuilds its full-text tables with the same settings.
FTS_SETTINGS = {"hashsize": 16 << 20, "automerge": 8}


class DatabaseError(Exception):
    """The package cannot be loaded into SQLite as it stands."""


@dataclass(frozen=True)
class View:
    """A convenience view: its SQL and, per column, a description or (table, column)."""

    name: str
    title: str
    description: str
    sql: str
    # The table the view shows one row for each of (or a subset of).
    base: str
    columns: dict[str, str | tuple[str, str]] = field(default_factory=dict)


# Each view reads one table and looks everything else up in scalar subqueries
# (a name, a speaking order), with no ORDER BY. So a page's count(*) reads that
# one table's index and a search folds into the query, instead of joining or
# sorting every row of a million statements (seconds, past the time limit). The
# rows are those the joins gave (checked on the package and at 1M): names follow
# unique keys, and each person has one participation per event. Were there two,
# the view would show one where a join would repeat the statement. The site
# orders views through metadata.
VIEWS: tuple[View, ...] = (
    View(
        name="statements_detailed",
        title="Statements with speaker and event",
        description=(
            "Every statement with the name of who said it, the organisation they spoke "
            "for (their preferred affiliation at the event), the event and its topics."
        ),
        sql="""
select
  s.statement_id,
  s.type,
  s.text,
  coalesce(
    (select p.name from people p where p.person_id = s.person_id),
    (select so.name from organisations so where so.organisation_id = s.organisation_id)
  ) as speaker,
  coalesce(
    (
      select ao.name
      from participations pa
      join affiliations a on a.affiliation_id = pa.affiliation_id
      join organisations ao on ao.organisation_id = a.organisation_id
      where pa.person_id = s.person_id and pa.event_id = s.event_id
    ),
    (select so.name from organisations so where so.organisation_id = s.organisation_id)
  ) as organisation,
  (select e.name from events e where e.event_id = s.event_id) as event,
  (
    select pa.speaking_order from participations pa
    where pa.person_id = s.person_id and pa.event_id = s.event_id
  ) as speaking_order,
  (
    select json_group_array(topic_id)
    from (select topic_id from statement_topics st
          where st.statement_id = s.statement_id order by topic_id)
  ) as topics,
  s.source_id,
  s.paragraph
from statements s
""",
        base="statements",
        columns={
            "statement_id": ("statements", "statement_id"),
            "type": ("statements", "type"),
            "text": ("statements", "text"),
            "speaker": "Who said it: the person's preferred name, or the organisation",
            "organisation": "The organisation the speaker spoke for at the event",
            "event": ("events", "name"),
            "speaking_order": ("participations", "speaking_order"),
            "topics": "The topics the statement touches (topic_id values, a JSON array)",
            "source_id": ("statements", "source_id"),
            "paragraph": ("statements", "paragraph"),
        },
    ),
    View(
        name="current_affiliations",
        title="Current affiliations",
        description=(
            "Each person's roles that were current at the time, preferred claims only, "
            "with the person's and organisation's names."
        ),
        sql="""
select
  a.affiliation_id,
  (select p.name from people p where p.person_id = a.person_id) as person,
  a.role,
  (select o.name from organisations o where o.organisation_id = a.organisation_id)
    as organisation,
  a.start,
  a.person_id,
  a.organisation_id,
  a.source_id
from affiliations a
where a.preferred = 1 and a.former = 0
""",
        base="affiliations",
        columns={
            "affiliation_id": ("affiliations", "affiliation_id"),
            "person": ("people", "name"),
            "role": ("affiliations", "role"),
            "organisation": ("organisations", "name"),
            "start": ("affiliations", "start"),
            "person_id": ("affiliations", "person_id"),
            "organisation_id": ("affiliations", "organisation_id"),
            "source_id": ("affiliations", "source_id"),
        },
    ),
)


def read_descriptor(package_path: Path) -> dict[str, Any]:
    """Return datapackage.json with every resource's `schema` path replaced by the schema."""
    descriptor: dict[str, Any] = json.loads(package_path.read_text(encoding="utf-8"))
    for resource in descriptor.get("resources", []):
        schema = resource.get("schema")
        if isinstance(schema, str):
            schema_path = package_path.parent / schema
            resource["schema"] = json.loads(schema_path.read_text(encoding="utf-8"))
    return descriptor


def csv_resources(descriptor: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the package's CSV resources, in the package's order."""
    return [
        r
        for r in descriptor.get("resources", [])
        if r.get("format") == "csv" or str(r.get("path", "")).endswith(".csv")
    ]


def load_database(
    package_path: Path, db_path: Path, large_group_rows: int = LARGE_GROUP_ROWS
) -> None:
    """Write a fresh SQLite database at db_path from the Data Package at package_path.

    Args:
        package_path: datapackage.json, or the folder that holds it.
        db_path: the database to write; replaced only once it is complete.
        large_group_rows: facet values with this many rows get their page's
            other facets counted in advance (coop100.facets).

    Raises:
        DatabaseError: a resource is missing, malformed or breaks a foreign key.
    """
    if package_path.is_dir():
        package_path = package_path / DESCRIPTOR
    resources = csv_resources(read_descriptor(package_path))
    if not resources:
        raise DatabaseError(f"{package_path}: no CSV resources")
    load = Load(resources, db_path, large_group_rows)
    try:
        for resource in resources:
            load.insert(resource["name"], package_path.parent / resource["path"])
        load.index()
        _check_foreign_keys(load.db)
        load.finish()
    except BaseException:
        load.abort()
        raise


class Load:
    """One database being written, a step at a time, at a temp path beside db_path.

    The steps, in order: create (on construction), `insert` each table's CSV (and
    build its full-text index), `index`, then `finish` (facet counts, views, and the
    rename into place) or `abort`. The build runs them in a second process while it
    writes the package (coop100.pipeline), and between `index` and `finish` asks
    the loaded tables whether the rules across records hold (coop100.integrity).
    """

    def __init__(
        self,
        resources: list[dict[str, Any]],
        db_path: Path,
        large_group_rows: int = LARGE_GROUP_ROWS,
        tmp_path: Path | None = None,
    ) -> None:
        self.resources = {r["name"]: r for r in resources}
        self.db_path = db_path
        self.large_group_rows = large_group_rows
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = tmp_path or db_path.with_name(f".tmp-{db_path.name}")
        self.tmp_path.unlink(missing_ok=True)
        # No sqlite-utils plugins: what happens to be installed must not change the
        # database, and looking them up (an entry-point scan) was most of opening it.
        import sqlite_utils  # imported here: the build's first process never loads SQLite

        self.db = sqlite_utils.Database(self.tmp_path, execute_plugins=False)
        # A fresh file that is renamed into place only once complete needs no
        # journal: a crash leaves a temp file that the next load deletes.
        for pragma in _LOAD_PRAGMAS:
            self.db.execute(f"pragma {pragma}")
        for resource in resources:
            self.db.execute(_create_table_sql(resource))
        self._text_indexed: dict[str, int] = {}  # the last row in each full-text index
        for name in [name for name in self.resources if name in FTS_COLUMNS]:
            self.db.table(name).enable_fts(list(FTS_COLUMNS[name]), tokenize=FTS_TOKENIZER)
            for setting, value in FTS_SETTINGS.items():
                self.db.execute(
                    f"insert into [{name}_fts] ([{name}_fts], rank) values (?, ?)",
                    [setting, value],
                )
            self._text_indexed[name] = 0
        self.facet_rows: FacetRows | None = None  # counted already (facets.facet_counts)
        self._synced: list[Future[None]] = []
        self._completed = False

    def insert(self, name: str, csv_path: Path) -> None:
        """Insert every row of one table's CSV (one transaction), and index its text.

        The full-text index is built here, not with the others: the build loads
        the next table's CSV only once it is written, so this is work done while
        the rest of the package is still being written.
        """
        with self.db.conn:
            _insert_rows(self.db, csv_path, self.resources[name])
        self._index_text(name)

    def add(self, name: str, batch: pa.RecordBatch) -> None:
        """Insert rows of a table given in its published Arrow schema, as its CSV loads them.

        The build feeds the rows it writes, a batch at a time, so SQLite keeps pace
        with the writing instead of waiting for each CSV to be whole; the values are
        those `insert` casts from the CSV cells (tests/test_stream.py compares).
        """
        names = [f["name"] for f in self.resources[name]["schema"]["fields"]]
        if batch.schema.names != names:
            raise DatabaseError(f"{name}: columns {batch.schema.names} are not {names}")
        with self.db.conn:
            # A few thousand rows at a time: Python's objects for 40,000 statements
            # (a 16 MiB block) took 50 MB.
            for start in range(0, batch.num_rows, _ADD_ROWS):
                part = batch.slice(start, _ADD_ROWS)
                columns = [_sqlite_values(column) for column in part.columns]
                _insert(self.db.conn, _insert_sql(name, names), _marks(names), columns)
        self._index_text(name)

    def _index_text(self, name: str) -> None:
        """Bring the table's full-text index up to its last row (if it has one)."""
        if name not in FTS_COLUMNS:
            return
        listed = ", ".join(f"[{c}]" for c in FTS_COLUMNS[name])
        self.db.execute(
            f"insert into [{name}_fts] (rowid, {listed}) "
            f"select rowid, {listed} from [{name}] where rowid > ?",
            [self._text_indexed[name]],
        )
        last = self.db.execute(f"select max(rowid) from [{name}]").fetchone()[0]
        self._text_indexed[name] = last or 0

    def index(self) -> None:
        """The indexes, after the rows: one sort each, not a b-tree update per row."""
        for name in self.resources:
            self.index_table(name)

    def index_table(self, name: str) -> None:
        """One table's indexes: its page order, its foreign keys, its facet columns."""
        resource = self.resources[name]
        loaded = self.db.table(name)
        order = _order_index(resource)
        if order:
            loaded.create_index(order, unique=True, if_not_exists=True)
        # A key the order index or the primary key starts with (statement_topics
        # by topic, by statement) is found through it; a second index would
        # only cost build time and disk.
        primary_key = _as_list(resource["schema"].get("primaryKey", []))
        led = {index[0] for index in (order, primary_key) if index}
        for fk in resource["schema"].get("foreignKeys", []):
            for column in _as_list(fk["fields"]):
                if column not in led:
                    loaded.create_index([column], if_not_exists=True)
        for columns in _facet_indexes(resource):
            loaded.create_index(list(columns), if_not_exists=True)

    def start_sync(self) -> None:
        """Write what the database holds so far to disk, on a thread, while work goes on.

        So the database is on disk before it replaces the one served, and the
        rename does not wait for it: renamed over a file, ext4 first allocates
        every block the new file has not yet written (~1 s for 1.2 GB).
        `finish` waits for every sync started.
        """
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coop100-sync")
        self._synced.append(pool.submit(fsync, self.tmp_path))
        pool.shutdown(wait=False)

    def complete(self) -> None:
        """Store the facet counts, create the views, and wait for the file to be on disk."""
        if self._completed:
            return
        # Counted from the indexes (coop100.facets), unless counted already.
        rows = self.facet_rows or facet_counts(self.db.conn, self.facets(), self.large_group_rows)
        with self.db.conn:
            store_facet_counts(self.db.conn, *rows)
        for view in VIEWS:
            self.db.create_view(view.name, view.sql.strip())
        # No VACUUM: the indexes were built after the rows, so it would only
        # shrink the file by ~1% for a tenth of the load time at 1M statements.
        self.db.close()
        for synced in self._synced:
            synced.result()
        self._completed = True

    def finish(self) -> Path:
        """`complete` the database (unless done already); then move it into place."""
        self.complete()
        os.replace(self.tmp_path, self.db_path)
        return self.db_path

    def facets(self) -> dict[str, list[str]]:
        """Each table's facet columns."""
        return {name: column_facets(name) for name in self.resources}

    def abort(self) -> None:
        """Close and delete the unfinished database."""
        self.db.close()
        self.tmp_path.unlink(missing_ok=True)


# -- the build's load, in a second process ---------------------------------------------


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
        return _judge(self._load, self._broken), self._broken

    def complete(self) -> None:
        """Load.complete: the second process does it while the build publishes."""
        self._load.complete()

    def finish(self) -> Path:
        return self._load.finish()

    def abort(self) -> None:
        self._load.abort()


_CHILD = "import sys; from coop100.database import _serve; _serve(*map(int, sys.argv[1:]))"


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


def _serve(receive_fd: int, send_fd: int) -> None:
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


def _judge(load: Load, broken: list[str]) -> dict[str, int]:
    """Index the loaded tables and add the rules across records they break to broken.

    A second connection reads beside the indexing, on a thread: the database is
    in WAL mode meanwhile, so it reads what is committed while the indexes are
    written. Once a table's indexes exist, it checks the table's foreign keys
    (`_keys_found`) and counts its facets (for `finish` to store). The tables
    are indexed largest first, so the largest are read while the smaller ones
    are indexed. The rules across records run last, on the writing connection,
    once every index exists.

    Returns:
        The rows loaded into each table.
    """
    from .integrity import broken_rules

    if broken:
        return {}
    counts = {
        name: load.db.execute(f"select count(*) from [{name}]").fetchone()[0]
        for name in load.resources
    }
    order = sorted(counts, key=lambda name: -counts[name])
    # The rows are all written: disk writes them while they are indexed.
    load.start_sync()
    load.db.execute("pragma journal_mode = wal")
    reader = sqlite3.connect(f"file:{load.tmp_path}?mode=ro", uri=True, check_same_thread=False)
    indexed = {name: threading.Event() for name in order}
    stop = threading.Event()

    def read() -> tuple[bool, FacetRows]:
        """Whether every foreign key found its row, and the facet counts."""
        taken: dict[str, FacetRows] = {}
        found = True
        for name in order:
            indexed[name].wait()
            if stop.is_set():
                break
            found = found and _keys_found(reader, name)
            taken[name] = facet_counts(reader, {name: facets[name]}, load.large_group_rows)
        # As facet_counts gives them for every table at once: by table name.
        groups = [row for name in sorted(taken) for row in taken[name][0]]
        return found, (groups, [row for name in sorted(taken) for row in taken[name][1]])

    facets = load.facets()
    try:
        # The reader takes only the time left over (as the zip's compression does):
        # the indexes, then the rules, are the longest path, and keep a core.
        with ThreadPoolExecutor(1, "coop100-read", lower_priority) as pool:
            done = pool.submit(read)
            try:
                for name in order:
                    load.index_table(name)
                    indexed[name].set()
                rules = broken_rules(load.db.conn)
                found, load.facet_rows = done.result()
                # A missing row is named as SQLite's own check names it, first found.
                first = None if found else load.db.execute("pragma foreign_key_check").fetchone()
                if first is not None:
                    table, rowid, parent, _ = first
                    broken.append(f"{table} row {rowid}: refers to a missing {parent}")
                if not broken:
                    broken += rules
            except BaseException:
                stop.set()  # the reader stops: at its next table, or now if it is reading
                reader.interrupt()
                raise
            finally:
                for event in indexed.values():
                    event.set()
    finally:
        reader.close()
    # Back to a file of its own, the indexes copied in from the log (only this
    # connection is open now), and to no journal for `finish`.
    load.db.execute("pragma journal_mode = delete")
    load.db.execute("pragma journal_mode = off")
    load.start_sync()
    return counts


def write_database(root: Path) -> Path:
    """Build root/build/coop100.db from root/datapackage.json and return its path."""
    db_path = root / "build" / DB_NAME
    load_database(root / DESCRIPTOR, db_path)
    return db_path


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _page_order(resource: dict[str, Any]) -> list[str]:
    """The order a table page shows its rows in: the sort column, then the primary key."""
    order = [SORT[resource["name"]]] if resource["name"] in SORT else []
    return order + [c for c in _as_list(resource["schema"].get("primaryKey", [])) if c not in order]


def _order_index(resource: dict[str, Any]) -> list[str] | None:
    """A unique index in a sorted table's page order, or None for one sorted by its key.

    A page, and the canned queries, read rows in this order and stop at the page
    size instead of sorting the whole table (events by date, affiliations by
    claim). Ending with the primary key makes it unique, which tells SQLite each
    row is one step of the order, so joins sorted by it stream too.
    """
    if resource["name"] not in SORT:
        return None
    return _page_order(resource)


def _facet_indexes(resource: dict[str, Any]) -> list[tuple[str, ...]]:
    """Indexes for the facet columns that are not foreign keys (those have their own).

    Each is followed by the page's default order (the table's sort column, then its
    primary key), so a page filtered to one facet value (type=claim, half the
    statements) reads its first rows in order instead of sorting the whole group,
    and its row count reads the index alone.
    """
    schema = resource["schema"]
    keys = {c for fk in schema.get("foreignKeys", []) for c in _as_list(fk["fields"])}
    order = _page_order(resource)
    return [
        (column, *[c for c in order if c != column])
        for column in column_facets(resource["name"])
        if column not in keys
    ]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_table_sql(resource: dict[str, Any]) -> str:
    """The table with its keys, laid out as sqlite-utils lays out its own CREATE TABLE."""
    schema = resource["schema"]
    pk = _as_list(schema.get("primaryKey", []))
    # Declared here rather than added afterwards (sqlite-utils' add_foreign_keys
    # copies every table once per call); SQLite lets a table refer to one that
    # does not exist yet, as sources and organisations refer to each other.
    references = {
        column: (other, other_column) for _, column, other, other_column in _foreign_keys(resource)
    }
    lines = []
    for spec in schema["fields"]:
        name = spec["name"]
        line = f"   {_quote(name)} {_SQLITE_TYPES.get(spec.get('type', 'string'), 'TEXT')}"
        if pk == [name]:
            line += " PRIMARY KEY"
        if name in pk or spec.get("constraints", {}).get("required"):
            line += " NOT NULL"
        if name in references:
            other, other_column = references[name]
            line += f" REFERENCES {_quote(other)}({_quote(other_column)})"
        lines.append(line)
    if len(pk) > 1:
        lines.append(f"   PRIMARY KEY ({', '.join(map(_quote, pk))})")
    return f"CREATE TABLE {_quote(resource['name'])} (\n" + ",\n".join(lines) + "\n)"


def _foreign_keys(resource: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    found = []
    for fk in resource["schema"].get("foreignKeys", []):
        reference = fk["reference"]
        # An empty or missing resource means the table refers to itself.
        other = reference.get("resource") or resource["name"]
        for column, other_column in zip(
            _as_list(fk["fields"]), _as_list(reference["fields"]), strict=True
        ):
            found.append((resource["name"], column, other, other_column))
    return found


def _insert_rows(db: sqlite_utils.Database, csv_path: Path, resource: dict[str, Any]) -> None:
    """Insert the CSV's rows, cast by the schema exactly as _cast does, in batches."""
    fields = resource["schema"]["fields"]
    names = [f["name"] for f in fields]
    missing = set(resource["schema"].get("missingValues", [""]))
    with csv_path.open("rb") as fh:
        header = next(csv.reader(io.TextIOWrapper(fh, encoding="utf-8", newline="")), None)
        if header != names:
            raise DatabaseError(f"{csv_path}: header {header} does not match the schema {names}")
    insert, marks = _insert_sql(resource["name"], names), _marks(names)
    # pyarrow parses the CSV in C++ with every column as text, so the values
    # are the same strings csv.reader yields; the casting stays Python's own.
    try:
        reader = pacsv.open_csv(
            csv_path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=_BLOCK_BYTES, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            cast = [
                _cast_column(batch.column(i).to_pylist(), field, missing, csv_path)
                for i, field in enumerate(fields)
            ]
            _insert(db.conn, insert, marks, cast)
    except pa.ArrowInvalid as exc:
        # e.g. a row with more or fewer cells than the header
        raise DatabaseError(f"{csv_path}: {exc}") from None


def _insert_sql(table: str, names: list[str]) -> str:
    return f"insert into [{table}] ({', '.join(f'[{name}]' for name in names)}) values "


def _marks(names: list[str]) -> str:
    return "(" + ", ".join("?" * len(names)) + ")"


def _sqlite_values(values: pa.Array) -> list[Any]:
    """A column of a published Arrow table as SQLite gets it from the CSV (_cast_column).

    Booleans are 1 and 0; dates and times the text the CSV holds (YYYY-MM-DD,
    HH:MM:SS); an empty text is missing, as an empty cell is.
    """
    kind = values.type
    if pa.types.is_boolean(kind):
        values = pc.cast(values, pa.int64())
    elif pa.types.is_date(kind):
        values = pc.cast(values, pa.string())
    elif pa.types.is_time(kind):
        values = pc.cast(pc.cast(values, pa.time32("s")), pa.string())
    empty = pa.scalar("", pa.string())
    if pa.types.is_string(values.type) and pc.any(pc.equal(values, empty)).as_py():
        values = pc.if_else(pc.equal(values, empty), pa.scalar(None, pa.string()), values)
    found: list[Any] = values.to_pylist()
    return found


def _insert(conn: sqlite3.Connection, insert: str, marks: str, columns: list[list[Any]]) -> None:
    """Insert the rows of these columns, _ROWS_PER_INSERT rows to a statement.

    One statement per row spends most of its time in Python's sqlite3 module,
    not in SQLite: a hundred rows to a statement load the million statements
    about twice as fast, within ~10% of the sqlite3 shell's `.import`.
    """
    width = len(columns)
    values = list(itertools.chain.from_iterable(zip(*columns, strict=True)))
    step = _ROWS_PER_INSERT * width
    whole = len(values) // step * step
    many = insert + ", ".join([marks] * _ROWS_PER_INSERT)
    conn.executemany(many, (values[i : i + step] for i in range(0, whole, step)))
    rest = values[whole:]
    conn.executemany(insert + marks, (rest[i : i + width] for i in range(0, len(rest), width)))


def _cast_column(
    values: list[str], field: dict[str, Any], missing: set[str], where: Path
) -> list[Any]:
    """Cast a whole column as _cast casts each value (a bad value raises _cast's error)."""
    kind = field.get("type", "string")
    if kind not in ("integer", "number", "boolean"):
        if missing.isdisjoint(values):
            return values
        return [None if value in missing else value for value in values]
    if kind == "boolean":
        true = set(field.get("trueValues", _TRUE))
        false = set(field.get("falseValues", _FALSE))
        if true.union(false, missing).issuperset(values):
            return [None if v in missing else 1 if v in true else 0 for v in values]
    else:
        to_number = int if kind == "integer" else float
        try:
            return [None if v in missing else to_number(v) for v in values]
        except ValueError:
            pass
    return [_cast(value, field, missing, where) for value in values]


def _cast(value: str, field: dict[str, Any], missing: set[str], where: Path) -> Any:
    if value in missing:
        return None
    kind = field.get("type", "string")
    if kind == "boolean":
        if value in set(field.get("trueValues", _TRUE)):
            return 1
        if value in set(field.get("falseValues", _FALSE)):
            return 0
        raise DatabaseError(f"{where}: {field['name']}: {value!r} is not a boolean")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        raise DatabaseError(f"{where}: {field['name']}: {value!r} is not a {kind}") from None
    return value


def _dangling(db: sqlite_utils.Database) -> list[tuple[str, int, str]]:
    """Each row whose foreign key refers to a row that is not there: table, rowid, parent."""
    return [row[:3] for row in db.execute("pragma foreign_key_check").fetchall()]


def _keys_found(conn: sqlite3.Connection, table: str) -> bool:
    """Whether every foreign key of the table's rows finds its row (`_dangling` is empty).

    Asked of each distinct value, which the index on the key column gives in
    order, rather than of each row as `pragma foreign_key_check` does: at a
    million statements 1.5 s rather than 2.7 s of CPU. A key whose parent
    column is not named is left to the pragma (False).
    """
    keys: dict[int, list[tuple[str, str, str | None]]] = {}
    for key, _, parent, column, parent_column, *_ in conn.execute(
        f"pragma foreign_key_list([{table}])"
    ):
        keys.setdefault(key, []).append((parent, column, parent_column))
    for columns in keys.values():
        if any(parent_column is None for _, _, parent_column in columns):
            return False
        parent = columns[0][0]
        listed = ", ".join(f"[{column}]" for _, column, _ in columns)
        present = " and ".join(f"[{column}] is not null" for _, column, _ in columns)
        matched = " and ".join(f"p.[{to}] = k.[{column}]" for _, column, to in columns)
        sql = (
            f"select 1 from (select distinct {listed} from [{table}] where {present}) k "
            f"where not exists (select 1 from [{parent}] p where {matched}) limit 1"
        )
        if conn.execute(sql).fetchone() is not None:
            return False
    return True


def _check_foreign_keys(db: sqlite_utils.Database) -> None:
    broken = _dangling(db)
    if broken:
        table, rowid, parent = broken[0]
        raise DatabaseError(
            f"{len(broken)} broken foreign key(s), first: {table} row {rowid} -> {parent}"
        )
