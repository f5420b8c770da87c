"""Facet counts, counted once while the database is built.

Datasette counts each facet of a table page with a GROUP BY over every row the
page shows. At a million statements that is ~85 ms per facet on every visit to
the statements page, and ~400 ms once a visitor picks a facet value that half
the table has (type=claim). The database is immutable, so those counts are
stored with it, in two hidden tables:

- `_facet_groups`: each group of rows whose facets are stored: a whole table
  (filter_column and filter_value empty), and every value of a facet column
  with at least LARGE_GROUP_ROWS rows (say statements where type = 'claim').
- `_facet_counts`: for each group and facet column, its values and their
  counts, the rows Datasette's own facet query returns (the first 1,001 in
  its order, as many as any page can ask for).

coop100.site.plugin reads them for a page showing one of those groups and
counts every other page live, where the rows are few or an index finds them.
The counts are taken from the values as they are inserted (Arrow arrays of the
cast CSV cells), so they cost no second pass over SQLite.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from coop100.settings import FACET_COUNTS_TABLE as COUNTS_TABLE
from coop100.settings import FACET_GROUPS_TABLE as GROUPS_TABLE
from coop100.settings import MAX_RETURNED_ROWS

# A facet value held by at least this many rows gets the other facets of its
# page stored too; a smaller group is counted live in a few milliseconds.
LARGE_GROUP_ROWS = 10_000
# The most values a facet can show is max_returned_rows (?_facet_size=max); one
# more tells Datasette the list is truncated. Beyond that no page reads a count.
_KEEP_VALUES = MAX_RETURNED_ROWS + 1
_ARROW_TYPES = {"integer": pa.int64(), "boolean": pa.int64(), "number": pa.float64()}

# Two statements run one by one: executescript would first commit the load's
# open transaction.
_SCHEMA = (
    f"""create table [{GROUPS_TABLE}] (
  table_name text not null,
  filter_column text not null,
  filter_value text not null,
  rows integer not null,
  primary key (table_name, filter_column, filter_value)
)""",
    f"""create table [{COUNTS_TABLE}] (
  table_name text not null,
  filter_column text not null,
  filter_value text not null,
  column_name text not null,
  value,
  count integer not null
)""",
)
_INDEX = (
    f"create index [idx_{COUNTS_TABLE}] on [{COUNTS_TABLE}] "
    "(table_name, filter_column, filter_value, column_name, count desc, value)"
)


class FacetCounter:
    """Collect the facet columns of each table as they are loaded, then store their counts."""

    def __init__(self, large_group_rows: int = LARGE_GROUP_ROWS) -> None:
        self.large_group_rows = large_group_rows
        self._chunks: dict[str, dict[str, list[pa.Array]]] = {}

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
        for statement in _SCHEMA:
            conn.execute(statement)
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
    counts = [(table, "", "", *row) for row in _counts(data)]
    for column in data.column_names:
        for value, rows in _value_counts(data[column], at_least=large_group_rows):
            text = str(value)  # as the page's query string gives it (?type=claim)
            groups.append((table, column, text, rows))
            subset = data.filter(pc.equal(data[column], value))
            # The picked column too: its one value and count, as Datasette shows it.
            counts += [(table, column, text, *row) for row in _counts(subset)]
    return groups, counts


def _counts(data: pa.Table) -> list[tuple[str, Any, int]]:
    """The values a facet on each column can show, with their counts."""
    return [
        (column, value, count)
        for column in data.column_names
        for value, count in _value_counts(data[column], keep=_KEEP_VALUES)
    ]


def _value_counts(
    values: pa.ChunkedArray, keep: int | None = None, at_least: int = 1
) -> list[tuple[Any, int]]:
    """Non-null values and how many rows hold each, in SQLite's `count desc, value` order.

    keep: only the first this many; at_least: only values held by this many rows.
    Arrow sorts strings by their UTF-8 bytes, as SQLite's default collation does.
    """
    found = pc.value_counts(values)
    counted = pa.table({"value": found.field("values"), "count": found.field("counts")})
    counted = counted.filter(
        pc.and_(pc.is_valid(counted["value"]), pc.greater_equal(counted["count"], at_least))
    )
    order = pc.sort_indices(counted, sort_keys=[("count", "descending"), ("value", "ascending")])
    top = counted.take(order[:keep])
    return list(zip(top["value"].to_pylist(), top["count"].to_pylist(), strict=True))
