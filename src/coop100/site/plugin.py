"""Datasette plugin: a read-only, bounded site with stored facets and its own landing page.

Every connection is hardened (coop100.site.hardening); SQL a visitor writes runs
in killable worker processes (coop100.site.sqlguard).
"""

from __future__ import annotations

import gc
import re
import sqlite3
from collections.abc import Generator
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.facets import ColumnFacet
from datasette.filters import FilterArguments
from datasette.utils import escape_sqlite, tilde_encode
from datasette.utils.asgi import Response
from datasette.version import __version__ as datasette_version
from markupsafe import Markup, escape

# Only the light settings module: coop100.database imports sqlite_utils, which
# imports pandas when installed, some 70 MB in every served process.
from coop100.site import settings
from coop100.site.arguments import read_arguments  # noqa: F401  (registers its asgi_wrapper)
from coop100.site.downloads import serve_downloads  # noqa: F401  (registers its asgi_wrapper)
from coop100.site.hardening import harden
from coop100.site.http import (  # noqa: F401 - hooks of this plugin
    asgi_wrapper,
    handle_exception,
    register_output_renderer,
)
from coop100.site.pages import page_css_urls, page_routes, page_template_vars  # noqa: F401
from coop100.site.precounted import PrecountedColumnFacet
from coop100.site.search import cap_searches, search_routes  # noqa: F401  (hookimpls)
from coop100.site.sqlguard import guard_sql_requests as guard_sql_requests

# Datasette's own bookkeeping database, which it writes to, and the scratch
# in-memory connection /-/versions creates a table in (not served without --memory).
_INTERNAL = "_internal"
_MEMORY = "_memory"


@hookimpl  # type: ignore[untyped-decorator]
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    """Harden every connection to a published database and map its file into memory."""
    if database == _INTERNAL:
        return
    if database != _MEMORY:
        # Pages are read from the mapped file instead of copied through a read()
        # call each: a search touching a million rows takes about half the time.
        conn.execute(f"pragma mmap_size = {settings.MMAP_BYTES}")
    harden(conn, read_only=database != _MEMORY)


@hookimpl  # type: ignore[untyped-decorator]
def startup(datasette: Any) -> Any:
    """Once everything is imported, keep the garbage collector off those objects.

    A full collection otherwise walks every module, template and metadata object
    Datasette holds, a pause of tens of milliseconds that lands on whichever
    request happens to allocate at that moment (the slowest 5% of page views).
    """

    async def freeze() -> None:
        gc.collect()
        gc.freeze()

    return freeze


@hookimpl(wrapper=True)  # type: ignore[untyped-decorator]
def register_facet_classes() -> Generator[None, list[list[type]], list[list[type]]]:
    """Swap Datasette's column facet for one that reads the counts stored with the database.

    Same facets, same links and labels (coop100.site.precounted); a wrapper, so
    Datasette's date and array facets stay as they are.
    """
    registered = yield
    return [
        [PrecountedColumnFacet if cls is ColumnFacet else cls for cls in classes]
        for classes in registered
    ]


@hookimpl  # type: ignore[untyped-decorator]
def extra_template_vars(template: str, datasette: Any) -> Any:
    """Give the landing page the row count of every table (read from the inspect file)."""

    async def row_counts() -> dict[str, dict[str, int]]:
        if template != "index.html" or settings.DATABASE not in datasette.databases:
            return {"row_counts": {}}
        counts = await datasette.get_database(settings.DATABASE).table_counts()
        return {"row_counts": {name: n for name, n in counts.items() if n is not None}}

    return row_counts


@hookimpl  # type: ignore[untyped-decorator]
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    """Serve the landing page `/` ourselves; `/.json` stays Datasette's own index."""
    return [(r"^/$", landing_page), (rf"^{re.escape(CSS_URL)}$", stylesheet)]


CSS_URL = "/-/coop100.css"
_CSS = Path(__file__).parent / "static" / "coop100.css"


@hookimpl  # type: ignore[untyped-decorator]
def extra_css_urls() -> list[str]:
    """Add the site's stylesheet to every page."""
    return [CSS_URL]


async def stylesheet() -> Response:
    """Serve static/coop100.css (Datasette serves plugin static/ folders only for packages)."""
    return Response(
        _CSS.read_text(encoding="utf-8"),
        content_type="text/css; charset=utf-8",
        headers={"Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}"},
    )


async def landing_page(datasette: Any, request: Any) -> Response:
    """Render templates/index.html from the metadata and the inspect file's row counts.

    Datasette 0.65's index view checks the visibility of every table, FTS shadow
    tables included (about 60), and each check deep-copies the whole metadata:
    some 60 ms of CPU per request, spent on a table list index.html never shows.
    The permissions that matter here (instance, database) are still checked.
    """
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    databases = []
    for name in datasette.databases:
        visible, private = await datasette.check_visibility(request.actor, "view-database", name)
        if visible:
            databases.append({"name": name, "private": private})
    json_url = datasette.absolute_url(request, datasette.urls.path("/.json"))
    page = await datasette.render_template(
        ["index.html"],
        {
            "databases": databases,
            "metadata": datasette.metadata(),
            "datasette_version": datasette_version,
            "alternate_url_json": json_url,
            "private": not await datasette.permission_allowed(None, "view-instance", default=True),
        },
        request=request,
        view_name="index",
    )
    return Response.html(
        page,
        headers={
            "Link": f'{json_url}; rel="alternate"; type="application/json+datasette"',
            "Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}",
        },
    )


@hookimpl(trylast=True)  # type: ignore[untyped-decorator]
def filters_from_request(
    request: Any, database: str, table: str, datasette: Any
) -> FilterArguments | None:
    """Search a view (`?_search=`) through the full-text index of the table it shows.

    Runs after Datasette's own search filter, which finds no index for a view and
    would otherwise switch the search box off again.
    """
    if database != settings.DATABASE or table not in settings.VIEW_SEARCH:
        return None
    base, key = settings.VIEW_SEARCH[table]
    search = request.args.get("_search", "")
    if not search:
        return FilterArguments([], extra_context={"supports_search": True})
    fts, key, base = escape_sqlite(f"{base}_fts"), escape_sqlite(key), escape_sqlite(base)
    return FilterArguments(
        [
            f"{key} in (select {key} from {base} where rowid in "
            f"(select rowid from {fts} where {fts} match escape_fts(:coop100_search)))"
        ],
        params={"coop100_search": search},
        human_descriptions=[f'search matches "{search}"'],
        extra_context={"supports_search": True, "search": search},
    )


_FOREIGN_KEYS: dict[tuple[str, str], list[dict[str, str]]] = {}
_LABEL_COLUMNS: dict[tuple[str, str], str | None] = {}


@hookimpl  # type: ignore[untyped-decorator]
def render_cell(value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    """Show a foreign key on a row page as a link labelled with the row it points to.

    Table pages already expand labels (the value then arrives as a dict); row
    pages in Datasette 0.65 show the bare id, which this fills in the same way.
    """
    if database != settings.DATABASE or table is None or value in (None, ""):
        return None
    if isinstance(value, dict):
        return None
    known = _FOREIGN_KEYS.get((database, table))
    if known is not None and all(f["column"] != column for f in known):
        # Most cells: no coroutine, no query (a 1M-statement table page has ~400 cells).
        return None

    async def link() -> Markup | None:
        db = datasette.get_database(database)
        # The database is immutable, so its keys and label columns are read once.
        fks = _FOREIGN_KEYS.get((database, table))
        if fks is None:
            fks = _FOREIGN_KEYS[(database, table)] = await db.foreign_keys_for_table(table)
        fk = next((f for f in fks if f["column"] == column), None)
        if fk is None:
            return None
        other = fk["other_table"]
        if (database, other) not in _LABEL_COLUMNS:
            _LABEL_COLUMNS[(database, other)] = await db.label_column_for_table(other)
        label_column = _LABEL_COLUMNS[(database, other)]
        label = None
        if label_column:
            result = await db.execute(
                f"select {escape_sqlite(label_column)} from {escape_sqlite(other)} "
                f"where {escape_sqlite(fk['other_column'])} = ?",
                [value],
            )
            row = result.first()
            label = row[0] if row else None
        href = datasette.urls.row(database, other, tilde_encode(str(value)))
        if label is None or label == value:
            return Markup(f'<a href="{escape(href)}">{escape(value)}</a>')
        return Markup(f'<a href="{escape(href)}">{escape(label)}</a>&nbsp;<em>{escape(value)}</em>')

    return link
