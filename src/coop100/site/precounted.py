"""Datasette's column facets, read from counts stored with the database where it has them.

coop100.load.facets stores, for each table page and each facet value held by many
rows, what Datasette's facet query would count. This facet class answers from
those rows when the page shows exactly such a group (the whole table, or
`?column=value` alone) and otherwise lets Datasette count as usual, so a
page's facets are the same either way; only the time differs. One difference
from Datasette, on purpose: a table's later pages (`?_next=`) count their facets
over every row the page counts, not only the rows after the cursor.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import ColumnFacet
from datasette.utils import (
    compound_keys_after_sql,
    escape_sqlite,
    path_with_added_args,
    path_with_removed_args,
)

from coop100 import serving
from coop100.site import settings


class PrecountedColumnFacet(ColumnFacet):  # type: ignore[misc]
    """ColumnFacet that reads stored counts for the groups coop100.load.facets counted."""

    # Set by Datasette's Facet.__init__: the page's SQL without order or limit, and
    # its parameters (a dict of :p0, :p1... for a table page).
    sql: str
    params: Any

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        await self._drop_cursor()
        size = self.get_facet_size()
        # More values than coop100.load.facets kept (a higher max_returned_rows) count live.
        group = await self._stored_group() if size <= settings.MAX_RETURNED_ROWS else None
        if group is None:
            return await super().facet_results()  # type: ignore[no-any-return]
        results: list[dict[str, Any]] = []
        timed_out: list[str] = []
        qs_pairs = self.get_querystring_pairs()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            try:
                rows = await self._stored_counts(group, column, size + 1)
            except QueryInterrupted:
                timed_out.append(column)
                continue
            if rows is None:
                # Not a column coop100.load.facets counts (say ?_facet=text): count it live.
                live, live_timed_out = await self._live(source_and_config)
                results += live
                timed_out += live_timed_out
                continue
            results.append(
                {
                    "name": column,
                    "type": self.type,
                    "hideable": source_and_config["source"] != "metadata",
                    "toggle_url": self.ds.urls.path(
                        path_with_removed_args(self.request, {"_facet": column})
                    ),
                    "results": await self._values(column, rows[:size], qs_pairs),
                    "truncated": len(rows) > size,
                }
            )
        return results, timed_out

    async def _drop_cursor(self) -> None:
        """Count a later page's facets over all its rows, as its row count is.

        Datasette 0.65 adds a table page's `_next` cursor to the SQL its facets
        count, so page two counted only the rows after it, live (~350 ms at a
        million statements), while the page still says how many rows there are
        in all (and a view's later pages, paged by offset, count them all). The
        cursor is the last condition, written as Datasette writes it for the
        table's key and sort; any other shape is left as it is.
        """
        if not self.table or not self.request.args.get("_next"):
            return
        pks = await self.ds.get_database(self.database).primary_keys(self.table)
        if not pks:
            return
        sort = self.request.args.get("_sort") or (self.metadata or {}).get("sort")
        for clause, names in _cursors(pks, sort, len(self.params)):
            for before in (" and ", "where "):
                if self.sql.endswith(f"{before}{clause} "):
                    self.sql = self.sql[: -len(f"{before}{clause} ")] + " "
                    self.params = {k: v for k, v in self.params.items() if k not in names}
                    return

    async def _stored_group(self) -> tuple[str, str] | None:
        """Return (filter_column, filter_value) if the page's rows are a stored group."""
        columns = serving.column_facets(self.table) if self.table else []
        if not columns:
            return None
        rest = self.sql.partition(f" from {escape_sqlite(self.table)} ")[2].strip()
        if not rest and not self.params:
            group = ("", "")
        else:
            # Datasette's exact filter, `where "type" = :p0` ([name] if it needs brackets).
            column = next((c for c in columns if rest in _exact_filters(c)), None)
            if column is None or set(self.params) != {"p0"}:
                return None
            group = (column, str(self.params["p0"]))
        db = self.ds.get_database(self.database)
        if not await db.table_exists(settings.FACET_GROUPS_TABLE):
            return None  # a database built without stored counts: count live
        found = await db.execute(
            f"select 1 from [{settings.FACET_GROUPS_TABLE}] where table_name = ? "
            "and filter_column = ? and filter_value = ?",
            [self.table, *group],
        )
        return group if found.first() else None

    async def _stored_counts(
        self, group: tuple[str, str], column: str, limit: int
    ) -> list[tuple[Any, int]] | None:
        found = await self.ds.execute(
            self.database,
            f"select value, count from [{settings.FACET_COUNTS_TABLE}] where table_name = ? "
            "and filter_column = ? and filter_value = ? and column_name = ? "
            "order by count desc, value limit ?",
            [self.table, *group, column, limit],
            truncate=False,
            custom_time_limit=self.ds.setting("facet_time_limit_ms"),
        )
        rows = [(row[0], row[1]) for row in found.rows]
        if rows or column in serving.column_facets(self.table):
            return rows
        return None

    async def _live(
        self, source_and_config: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Datasette's own count of one facet."""
        only = ColumnFacet(
            self.ds,
            self.request,
            self.database,
            sql=self.sql,
            table=self.table,
            params=self.params,
            metadata=self.metadata,
            row_count=self.row_count,
        )
        only.get_configs = lambda: [source_and_config]
        return await only.facet_results()  # type: ignore[no-any-return]

    async def _values(
        self, column: str, rows: list[tuple[Any, int]], qs_pairs: list[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        """The facet's values with labels and toggle links, as ColumnFacet gives them."""
        expanded = await self.ds.expand_foreign_keys(
            self.database, self.table, column, [value for value, _ in rows]
        )
        column_qs = f"{column}__exact" if column.startswith("_") else column
        values = []
        for value, count in rows:
            url = self.ds.urls.path
            selected = (column_qs, str(value)) in qs_pairs
            if selected:
                toggle_path = path_with_removed_args(self.request, {column_qs: str(value)})
            else:
                toggle_path = path_with_added_args(self.request, {column_qs: value})
            values.append(
                {
                    "value": value,
                    "label": expanded.get((column, value), value),
                    "count": count,
                    "toggle_url": self.ds.absolute_url(self.request, url(toggle_path)),
                    "selected": selected,
                }
            )
        return values


def _exact_filters(column: str) -> tuple[str, str]:
    """The where clauses Datasette writes for ?column=value, quoted either way."""
    return (f'where "{column}" = :p0', f"where {escape_sqlite(column)} = :p0")


def _cursors(pks: list[str], sort: str | None, count: int) -> list[tuple[str, list[str]]]:
    """The conditions Datasette 0.65 adds for `_next`, each with its parameter names.

    count is how many parameters the page's SQL has, the cursor's last.
    """
    found = []
    first = count - len(pks)  # ordered by the key alone
    names = [f"p{first + i}" for i in range(len(pks))]
    found.append((compound_keys_after_sql(pks, first), names))
    if sort:
        first = count - len(pks) - 1  # the sort value follows the key's
        column, value = escape_sqlite(sort), f":p{count - 1}"
        after = compound_keys_after_sql(pks, first)
        clause = f"({column} > {value} or ({column} = {value} and {after}))"
        found.append((clause, [f"p{first + i}" for i in range(len(pks) + 1)]))
    return found


@hookimpl(specname="register_facet_classes", wrapper=True)  # type: ignore[untyped-decorator]
def use_stored_facets() -> Generator[None, list[list[type]], list[list[type]]]:
    """Swap Datasette's column facet for one that reads the counts stored with the database.

    Same facets, same links and labels (above); a wrapper, so
    Datasette's date and array facets stay as they are.
    """
    registered = yield
    return [
        [PrecountedColumnFacet if cls is ColumnFacet else cls for cls in classes]
        for classes in registered
    ]
