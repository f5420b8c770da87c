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
The counts are taken once the indexes are built, each from the index on its
column, so memory holds the counts, never the rows (a build at ten million
statements counts in the memory it needs at one million).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from coop100.settings import FACET_COUNTS_TABLE as COUNTS_TABLE
from coop100.settings import FACET_GROUPS_TABLE as GROUPS_TABLE
from coop100.settings import MAX_RETURNED_ROWS

# A facet value held by at least this many rows gets the other facets of its
# page stored too; a smaller group is counted live in a few milliseconds.
LARGE_GROUP_ROWS = 10_000
# The most values a facet can show is max_returned_rows (?_facet_size=max); one
# more tells Datasette the list is truncated. Beyond that no page reads a count.
_KEEP_VALUES = MAX_RETURNED_ROWS + 1

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


FacetRows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def facet_counts(
    conn: sqlite3.Connection,
    facets: dict[str, list[str]],
    large_group_rows: int = LARGE_GROUP_ROWS,
) -> FacetRows:
    """The rows of the two tables: the groups, and the counts of each group's facets.

    facets: each table's facet columns. Run after the indexes are built: every
    facet column has one (coop100.load.database), so each count reads an index, not
    the table, and memory holds only the counted values, never the rows. Only
    reads, so it may run beside other readers of the database.
    """
    groups: list[tuple[Any, ...]] = []
    counts: list[tuple[Any, ...]] = []
    for table in sorted(facets):
        columns = facets[table]
        rows = conn.execute(f"select count(*) from [{table}]").fetchone()[0]
        if not columns or not rows:
            continue
        groups.append((table, "", "", rows))
        counts += [(table, "", "", *row) for row in _counts(conn, table, columns)]
        for column in columns:
            for value, held in _value_counts(conn, table, column, at_least=large_group_rows):
                text = str(value)  # as the page's query string gives it (?type=claim)
                groups.append((table, column, text, held))
                # The picked column too: its one value and count, as Datasette shows it.
                counts += [
                    (table, column, text, *row)
                    for row in _counts(conn, table, columns, (column, value))
                ]
    return groups, counts


def store_facet_counts(
    conn: sqlite3.Connection, groups: list[tuple[Any, ...]], counts: list[tuple[Any, ...]]
) -> None:
    """Create the two tables and insert facet_counts' rows."""
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.executemany(f"insert into [{GROUPS_TABLE}] values (?, ?, ?, ?)", groups)
    conn.executemany(f"insert into [{COUNTS_TABLE}] values (?, ?, ?, ?, ?, ?)", counts)
    conn.execute(_INDEX)


def _counts(
    conn: sqlite3.Connection, table: str, columns: list[str], where: tuple[str, Any] | None = None
) -> list[tuple[str, Any, int]]:
    """The values a facet on each column can show, with their counts."""
    return [
        (column, value, count)
        for column in columns
        for value, count in _value_counts(conn, table, column, keep=_KEEP_VALUES, where=where)
    ]


def _value_counts(
    conn: sqlite3.Connection,
    table: str,
    column: str,
    keep: int = -1,
    at_least: int = 1,
    where: tuple[str, Any] | None = None,
) -> list[tuple[Any, int]]:
    """Non-null values of a column and how many rows hold each, in `count desc, value` order.

    keep: only the first this many (-1: all); at_least: only values held by this
    many rows; where: only the rows whose (column, value) is this.
    """
    condition, parameters = f"[{column}] is not null", [at_least, keep]
    if where is not None:
        condition += f" and [{where[0]}] = ?"
        parameters.insert(0, where[1])
    sql = (
        f"select [{column}], count(*) from [{table}] where {condition} "
        f"group by [{column}] having count(*) >= ? order by count(*) desc, [{column}] limit ?"
    )
    return [(value, count) for value, count in conn.execute(sql, parameters)]
