"""Load the published Data Package into SQLite: keys, indexes, full-text search, views.

The database is built from datapackage.json and its CSV resources only, never
from the records, which proves the package is enough to rebuild everything.
"""

from __future__ import annotations

import json
import os
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import sqlite_utils

from coop100.background import fsync
from coop100.load.facets import LARGE_GROUP_ROWS, FacetRows, facet_counts, store_facet_counts
from coop100.load.rows import insert_columns, insert_rows, insert_sql, sqlite_values, value_marks
from coop100.load.schema import as_list, create_table_sql, facet_indexes, order_index
from coop100.problems import DatabaseError
from coop100.serving import FTS_COLUMNS, VIEWS, column_facets
from coop100.settings import DB_NAME, DESCRIPTOR

# Rows of a batch the build sends (Load.add) made Python values at a time.
_ADD_ROWS = 8192
# Only for the fresh temp file load_database writes; none of these is stored in it.
LOAD_PRAGMAS = (
    "journal_mode = off",
    "synchronous = off",
    # KiB: 64 MiB, also what an index sort holds before it merges from temp files;
    # 256 MiB took the same CPU at 1M statements and 180 MB more memory.
    "cache_size = -65536",
)

FTS_TOKENIZER = "porter"
# Each full-text table's FTS5 settings, set before its first row. hashsize: bytes
# of index held in memory before a segment is written (FTS5's default is 1 MiB),
# automerge: segments of one size merged at once (default 4). At 1M statements,
# fed 40,000 at a time, these took the statements' index from 5.3 to 3.8 CPU
# seconds, 15 MB more memory, and left searches as fast. benchmarks/floor.py
# rebuilds its full-text tables with the same settings.
FTS_SETTINGS = {"hashsize": 16 << 20, "automerge": 8}


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
            other facets counted in advance (coop100.load.facets).

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
    the loaded tables whether the rules across records hold (coop100.rules.integrity).
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
        for pragma in LOAD_PRAGMAS:
            self.db.execute(f"pragma {pragma}")
        for resource in resources:
            self.db.execute(create_table_sql(resource))
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
            insert_rows(self.db, csv_path, self.resources[name])
        self._index_text(name)

    def add(self, name: str, batch: pa.RecordBatch) -> None:
        """Insert rows of a table given in its published Arrow schema, as its CSV loads them.

        The build feeds the rows it writes, a batch at a time, so SQLite keeps pace
        with the writing instead of waiting for each CSV to be whole; the values are
        those `insert` casts from the CSV cells (tests/unit/write/test_stream.py compares).
        """
        names = [f["name"] for f in self.resources[name]["schema"]["fields"]]
        if batch.schema.names != names:
            raise DatabaseError(f"{name}: columns {batch.schema.names} are not {names}")
        with self.db.conn:
            # A few thousand rows at a time: Python's objects for 40,000 statements
            # (a 16 MiB block) took 50 MB.
            for start in range(0, batch.num_rows, _ADD_ROWS):
                part = batch.slice(start, _ADD_ROWS)
                columns = [sqlite_values(column) for column in part.columns]
                insert_columns(self.db.conn, insert_sql(name, names), value_marks(names), columns)
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
        order = order_index(resource)
        if order:
            loaded.create_index(order, unique=True, if_not_exists=True)
        # A key the order index or the primary key starts with (statement_topics
        # by topic, by statement) is found through it; a second index would
        # only cost build time and disk.
        primary_key = as_list(resource["schema"].get("primaryKey", []))
        led = {index[0] for index in (order, primary_key) if index}
        for fk in resource["schema"].get("foreignKeys", []):
            for column in as_list(fk["fields"]):
                if column not in led:
                    loaded.create_index([column], if_not_exists=True)
        for columns in facet_indexes(resource):
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
        # Counted from the indexes (coop100.load.facets), unless counted already.
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


def write_database(root: Path) -> Path:
    """Build root/build/coop100.db from root/datapackage.json and return its path."""
    db_path = root / "build" / DB_NAME
    load_database(root / DESCRIPTOR, db_path)
    return db_path


def _dangling(db: sqlite_utils.Database) -> list[tuple[str, int, str]]:
    """Each row whose foreign key refers to a row that is not there: table, rowid, parent."""
    return [row[:3] for row in db.execute("pragma foreign_key_check").fetchall()]


def keys_found(conn: sqlite3.Connection, table: str) -> bool:
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
