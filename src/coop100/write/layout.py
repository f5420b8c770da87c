"""How the Parquet files are laid out, for readers who fetch only parts of them over HTTP.

polars, pyarrow's datasets and DuckDB read a remote Parquet file with Range requests:
the footer first, then only the column chunks of the row groups whose statistics
(each column's min and max) may hold the rows asked for. So one person's statements
cost a fraction of the file only if that person's rows sit together in few row
groups. Every rule of the layout is here, and `layout(table)` gives a table's:

- **Order.** Each table is sorted by the column a reader looks its rows up by
  (`SORT_BY`: statements by person, participations by event...), in byte order
  with nulls last, ties kept in records order (a stable sort). The file declares
  it (`sorting_columns`). The CSV keeps the records' order; `in_file_order` gives
  a table in its Parquet order, and `coop100 validate` compares the two with it.
- **Row groups** of `ROW_GROUP_ROWS` rows: small enough that a lookup fetches a
  few percent of a big table, large enough that a full read is not slower
  (measured in benchmarks/remote.py).
- **Statistics and a page index** (column and offset index) for every column, so
  readers that use the page index (DataFusion, Spark, hyparquet) skip pages too.

The sort never holds a whole table: rows are sorted in runs of `RUN_ROWS` rows,
spilled to an Arrow IPC file beside the output, and merged a block at a time
(`_Merge`). The bytes are those of sorting the whole table at once and writing it
(`tests/unit/write/test_stream.py` checks this with tiny runs, blocks and row groups).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# The column each table is sorted by: the one its rows are looked up by.
SORT_BY: dict[str, str] = {
    "sources": "source_id",
    "organisations": "organisation_id",
    "organisation_names": "organisation_id",
    "people": "person_id",
    "person_names": "person_id",
    "affiliations": "person_id",
    "events": "event_id",
    "participations": "event_id",
    "statements": "person_id",
    "topics": "topic_id",
    "statement_topics": "topic_id",
}

# 2^15 rows: at 1M statements the statements file has 31 row groups of ~0.7 MB, so
# one person's statements cost ~3% of it; a full read is as fast as with 2^20.
ROW_GROUP_ROWS = 1 << 15
# Rows sorted in memory at once (the rest wait on disk): at most ~100 MB of statements.
RUN_ROWS = 1 << 18
# Rows read from each run at a time while merging: the merge holds one such block
# of every run, so 38 runs (10M statements) hold ~150k rows, ~55 MB of statements.
MERGE_BLOCK_ROWS = 1 << 12
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 9

_ROW = "__coop100_row"  # the records order, which breaks ties; never written


@dataclass(frozen=True)
class Layout:
    """How one table's Parquet file is laid out."""

    sort_by: str | None
    row_group_rows: int
    page_index: bool

    def writer_options(self, schema: pa.Schema) -> dict[str, Any]:
        """The keyword arguments of pq.ParquetWriter for a file of this schema."""
        sorting = (
            [pq.SortingColumn(schema.get_field_index(self.sort_by), nulls_first=False)]
            if self.sort_by
            else None
        )
        return {
            "compression": COMPRESSION,
            "compression_level": COMPRESSION_LEVEL,
            "write_statistics": True,
            "write_page_index": self.page_index,
            "sorting_columns": sorting,
        }


def layout(table: str) -> Layout:
    """The layout of a published table's Parquet file."""
    return Layout(sort_by=SORT_BY[table], row_group_rows=ROW_GROUP_ROWS, page_index=True)


def _sort_keys(sort_by: str) -> list[tuple[str, str, str]]:
    return [(sort_by, "ascending", "at_end"), (_ROW, "ascending", "at_end")]


def file_order(table: pa.Table, sort_by: str | None) -> pa.Array | None:
    """Indices putting a whole table (in records order) in its Parquet file's order."""
    if sort_by is None:
        return None
    return pc.sort_indices(table, sort_keys=[(sort_by, "ascending", "at_end")])


def in_file_order(table: pa.Table, sort_by: str | None) -> pa.Table:
    """The rows of a whole table (in records order) in the order its Parquet file holds."""
    order = file_order(table, sort_by)
    return table if order is None else table.take(order)


class ParquetTableWriter:
    """Writes one table's Parquet file from batches in records order, in its layout.

    Rows are sorted by `layout.sort_by` in runs and merged (see the module's notes);
    each row group is written from one contiguous table, so the bytes do not depend
    on how the rows were cut into batches. An unsorted layout writes a row group as
    soon as its rows have come.
    """

    def __init__(self, path: Path, schema: pa.Schema, table_layout: Layout) -> None:
        self._schema = schema  # with the file's key-value metadata
        self._group_rows = table_layout.row_group_rows
        self._writer = pq.ParquetWriter(path, schema, **table_layout.writer_options(schema))
        sort_by = table_layout.sort_by
        self._runs = _Runs(path.parent, path.name, sort_by) if sort_by else None
        self._pending: list[pa.Table] = []
        self._waiting = 0
        self.rows = 0

    def write(self, batch: pa.Table) -> None:
        """Append rows, in the published schema and records order."""
        self.rows += batch.num_rows
        if self._runs is None:
            self._add(batch)
        else:
            self._runs.add(batch)

    def _add(self, block: pa.Table) -> None:
        self._pending.append(block)
        self._waiting += block.num_rows
        while self._waiting >= self._group_rows:
            self._write_group(self._group_rows)

    def _write_group(self, rows: int) -> None:
        table = pa.concat_tables(self._pending)
        group = table.slice(0, rows).combine_chunks().replace_schema_metadata(self._schema.metadata)
        self._writer.write_table(group, row_group_size=max(rows, 1))
        rest = table.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._waiting = rest.num_rows

    def close(self) -> None:
        """Sort what is left, write the last row groups and close the file."""
        try:
            if self._runs is not None:
                for block in self._runs.sorted_blocks():
                    self._add(block)
            if self._waiting or not self.rows:  # an empty table: one empty row group
                if not self.rows:
                    self._pending = [self._schema.empty_table()]
                self._write_group(self._waiting)
        finally:
            if self._runs is not None:
                self._runs.close()
            self._writer.close()


class _Runs:
    """Rows sorted RUN_ROWS at a time; runs beyond the first are spilled to disk."""

    def __init__(self, folder: Path, name: str, sort_by: str) -> None:
        self._folder, self._name, self._sort_by = folder, name, sort_by
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._next_row = 0
        self._spill: Path | None = None
        self._spilled: list[Path] = []

    def add(self, batch: pa.Table) -> None:
        rows = pa.array(range(self._next_row, self._next_row + batch.num_rows), pa.int64())
        self._next_row += batch.num_rows
        self._pending.append(batch.append_column(_ROW, rows))
        self._pending_rows += batch.num_rows
        while self._pending_rows >= RUN_ROWS:
            self._spill_run(RUN_ROWS)

    def _sorted_run(self, rows: int) -> pa.Table:
        table = pa.concat_tables(self._pending)
        rest = table.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        run = table.slice(0, rows)
        return run.take(pc.sort_indices(run, sort_keys=_sort_keys(self._sort_by)))

    def _spill_run(self, rows: int) -> None:
        if self._spill is None:
            self._spill = Path(
                tempfile.mkdtemp(prefix=f".tmp-sort-{self._name}-", dir=self._folder)
            )
        run = self._sorted_run(rows)
        path = self._spill / f"run-{len(self._spilled)}.arrow"
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.ipc.new_file(path, run.schema, options=options) as writer:
            writer.write_table(run, max_chunksize=MERGE_BLOCK_ROWS)
        self._spilled.append(path)

    def sorted_blocks(self) -> Iterator[pa.Table]:
        """Every row added, in the file's order, a block at a time (without the row number)."""
        if not self._spilled:
            if self._pending_rows:
                yield self._sorted_run(self._pending_rows).drop_columns([_ROW])
            return
        if self._pending_rows:
            self._spill_run(self._pending_rows)
        for block in _Merge(self._spilled, self._sort_by).blocks():
            yield block.drop_columns([_ROW])

    def close(self) -> None:
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None


class _Merge:
    """Merge runs each sorted by (key, row): a k-way merge a block at a time.

    Every row at most the frontier (the smallest last (key, row) among the blocks
    of runs with more to read) can go out: no row still on disk comes before it.
    Those rows are taken from every run's block, sorted together and given; the
    run whose block set the frontier is emptied, so the next round reads on.
    """

    def __init__(self, paths: list[Path], sort_by: str) -> None:
        self._sort_by = sort_by
        self._readers = [pa.ipc.open_file(pa.memory_map(os.fspath(p))) for p in paths]
        self._next = [0] * len(paths)
        self._blocks: list[pa.Table | None] = [None] * len(paths)

    def _more(self, run: int) -> bool:
        return self._next[run] < int(self._readers[run].num_record_batches)

    def _fill(self) -> None:
        for run, block in enumerate(self._blocks):
            if (block is None or block.num_rows == 0) and self._more(run):
                batch = self._readers[run].get_batch(self._next[run])
                self._blocks[run] = pa.Table.from_batches([batch])
                self._next[run] += 1

    def _last(self, block: pa.Table) -> tuple[bool, Any, int]:
        key = block[self._sort_by][-1].as_py()
        return (key is None, key or "", block[_ROW][-1].as_py())

    def blocks(self) -> Iterator[pa.Table]:
        while True:
            self._fill()
            live = [(run, b) for run, b in enumerate(self._blocks) if b is not None and b.num_rows]
            if not live:
                return
            limits = [self._last(b) for run, b in live if self._more(run)]
            taken: list[pa.Table] = []
            for run, block in live:
                count = block.num_rows if not limits else self._at_most(block, min(limits))
                taken.append(block.slice(0, count))
                self._blocks[run] = block.slice(count)
            merged = pa.concat_tables(taken)
            if merged.num_rows:
                yield merged.take(pc.sort_indices(merged, sort_keys=_sort_keys(self._sort_by)))

    def _at_most(self, block: pa.Table, limit: tuple[bool, Any, int]) -> int:
        """How many leading rows of a sorted block are at most (key, row) = limit."""
        is_null, key, row = limit
        keys, rows = block[self._sort_by], block[_ROW]
        if is_null:  # nulls sort last: every valid key, and null keys up to the row
            mask = pc.or_(pc.is_valid(keys), pc.less_equal(rows, row))
        else:
            same = pc.and_(pc.equal(keys, key), pc.less_equal(rows, row))
            mask = pc.fill_null(pc.or_(pc.less(keys, key), same), False)
        return int(pc.sum(mask).as_py() or 0)
