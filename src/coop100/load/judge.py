"""The loaded tables judged: indexed, keys and facets read beside, then the cross-record rules."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

from coop100.background import lower_priority
from coop100.load.database import Load, keys_found
from coop100.load.facets import FacetRows, facet_counts
from coop100.rules.integrity import broken_rules


def judge(load: Load, broken: list[str]) -> dict[str, int]:
    """Index the loaded tables and add the rules across records they break to broken.

    A second connection reads beside the indexing, on a thread: the database is
    in WAL mode meanwhile, so it reads what is committed while the indexes are
    written. Once a table's indexes exist, it checks the table's foreign keys
    (`keys_found`) and counts its facets (for `finish` to store). The tables
    are indexed largest first, so the largest are read while the smaller ones
    are indexed. The rules across records run last, on the writing connection,
    once every index exists.

    Returns:
        The rows loaded into each table.
    """
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
            # One read transaction a table: the writer keeps creating the other
            # tables' indexes, and a statement of this low-priority thread that
            # outlives enough of those schema changes failed with "database schema
            # has changed" (SQLite re-prepares it only so often). Inside a
            # transaction it reads one snapshot, whose schema cannot change.
            reader.execute("begin")
            try:
                found = found and keys_found(reader, name)
                taken[name] = facet_counts(reader, {name: facets[name]}, load.large_group_rows)
            finally:
                reader.execute("rollback")  # it only read
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
