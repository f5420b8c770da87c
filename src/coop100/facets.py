"""Facet counts, counted once while the database is built.

Datasette counts each facet of a table page with a GROUP BY over every row the
page shows. At a million statements that is ~85 ms per facet on every visit to
the statements page, and ~400 ms once a visitor picks a facet value that half
the table has (type=claim). The database is immutable, so those counts are
stored with it, in two hidden tables:

- `_facet_groups`: each group of rows whose facets are stored: a whole table
  (filter_column and filter_value empty), and every value of a facet column
  with at least LARGE_GROUP_ROWS rows (say statements where type = 'claim').
- `_facet_counts`: for each group and facet column, each value and its count,
  the rows Datasette's own facet query returns.

coop100.site.plugin reads them for a page showing one of those groups and
counts every other page live, where the rows are few or an index finds them.
The counts are taken from the values as they are inserted (Arrow arrays of the
cast CSV cells), so they cost no second pass over SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from coop100.site.settings import FACET_COUNTS_TABLE as COUNTS_TABLE
from coop100.site.settings import FACET_GROUPS_TABLE as GROUPS_TABLE
from coop100.site.settings import column_facets

# A facet value held by at least this many rows gets the other facets of its
# page stored too; a smaller group is counted live in a few milliseconds.
LARGE_GROUP_ROWS = 10_000
_ARROW_TYPES = {"integer": pa.int64(), "boolean": pa.int64(), "number": pa.float64()}

_SCHEMA = f"""
create table [{GROUPS_TABLE}] (
  table_name text not null,
  filter_column text not null,
  filter_value text not null,
  rows integer not null,
  primary key (table_name, filter_column, filter_value)
);
create table [{COUNTS_TABLE}] (
  table_name text not null,
  filter_column text not null,
  filter_value text not null,
  column_name text not null,
  value,
  count integer not null
);
"""
_INDEX = (
    f"create index [idx_{COUNTS_TABLE}] on [{COUNTS_TABLE}] "
    "(table_name, filter_column, filter_value, column_name, count desc, value)"
)


def filter_text(value: Any) -> str:
    """Return a facet value as its page's query string gives it (`?type=claim`)."""
    return str(value)


class FacetCounter:
    """Collect the facet columns of each table as they are loaded, then store their counts."""

    def __init__(self, large_group_rows: int = LARGE_GROUP_ROWS) -> None:
        self.large_group_rows = large_group_rows
        self._chunks: dict[str, dict[str, list[pa.Array]]] = {}

    def wants(self, table: str) -> list[str]:
        """Return the columns of table whose values should be passed to add()."""
        return column_facets(table)

    def add(self, table: str, column: str, values: list[Any], kind: str) -> None:
        """Take one batch of a column's values, exactly as they are inserted.

        kind is the field's Table Schema type: integers and booleans (stored as
        0 and 1) are int64, numbers float64, everything else text.
        """
        arrow_type = _ARROW_TYPES.get(kind, pa.string())
        chunks = self._chunks.setdefault(table, {}).setdefault(column, [])
        chunks.append(pa.array(values, type=arrow_type))

    def write(self, conn: sqlite3.Connection) -> None:
        """Create the two tables and fill them with every collected table's counts."""
        conn.executescript(_SCHEMA)
        for table in sorted(self._chunks):
            columns = self._chunks[table]
            data = pa.table({name: pa.chunked_array(chunks) for name, chunks in columns.items()})
            groups, counts = _table_counts(table, data, self.large_group_rows)
            conn.executemany(f"insert into [{GROUPS_TABLE}] values (?, ?, ?, ?)", groups)
            conn.executemany(f"insert into [{COUNTS_TABLE}] values (?, ?, ?, ?, ?, ?)", counts)
        conn.execute(_INDEX)
        self._chunks.clear()


def _table_counts(
    table: str, data: pa.Table, large_group_rows: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    groups: list[tuple[Any, ...]] = [(table, "", "", data.num_rows)]
    counts = [(table, "", "", *row) for row in _counts(data, data.column_names)]
    for column in data.column_names:
        for value, rows in _value_counts(data[column]):
            if rows < large_group_rows:
                continue
            text = filter_text(value)
            groups.append((table, column, text, rows))
            subset = data.filter(pc.equal(data[column], value))
            # The picked column too: its one value and count, as Datasette shows it.
            counts += [(table, column, text, *row) for row in _counts(subset, subset.column_names)]
    return groups, counts


def _counts(data: pa.Table, columns: Iterable[str]) -> list[tuple[str, Any, int]]:
    return [
        (column, value, count) for column in columns for value, count in _value_counts(data[column])
    ]


def _value_counts(values: pa.ChunkedArray) -> list[tuple[Any, int]]:
    """Each non-null value and how many rows hold it, largest first, as SQLite sorts ties."""
    found = pc.value_counts(values).to_pylist()
    pairs = [(item["values"], item["counts"]) for item in found if item["values"] is not None]
    # One type per column; Python orders str by code point, as SQLite's UTF-8 bytes.
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))
