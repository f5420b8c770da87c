"""Full-text search whose cost follows what a reader sees, not how many rows match.

Datasette 0.65 runs a table page's rows, its count and each facet as
`rowid in (select rowid from <fts> where <fts> match ...)`: every match looked up
in the table, four or five times a page (a word in a quarter of a million
statements: ~1 s). Two parts here, both through Datasette's plugin hooks:

- `cap_searches` wraps every `filters_from_request` answer (Datasette's own
  `?_search=` and `?_search_<column>=`, and the plugin's view search) and, when a
  search matches more than settings.SEARCH_MATCH_CAP rows, keeps only its first
  SEARCH_MATCH_CAP matches (in rowid order, the order statements were loaded),
  bounding the full-text query by the rowid of the last one. Rows, count and
  facets then cover those matches, and the page says so.
- `search_page` serves `/<database>/<table>/-/search` (and `.json`): the matches
  in relevance order (FTS5's `rank`, bm25), ranked among the first
  settings.SEARCH_RANK_CAP matches, with their count up to SEARCH_MATCH_CAP.
  FTS5 computes bm25 for every match it orders, so ranking all of them is what
  would not scale.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import urlencode

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.filters import FilterArguments
from datasette.utils import await_me_maybe, escape_sqlite, tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from coop100.site import settings

# The innermost full-text subquery every search filter writes (Datasette's
# filters.search_filters, and the plugin's view search): table, column, match.
_FTS_SUBQUERY = re.compile(
    r"\(select rowid from (?P<fts>\S+) where (?P<column>\S+) "
    r"match (?P<match>escape_fts\(:(?P<p1>\w+)\)|:(?P<p2>\w+))\)"
)


async def match_bound(
    db: Any, fts: str, column: str, match: str, params: dict[str, Any], cap: int
) -> int | None:
    """Return the rowid of a search's cap-th match if more rows match, else None."""
    found = await db.execute(
        f"select rowid from {fts} where {column} match {match} order by rowid "
        f"limit 2 offset {cap - 1}",
        params,
    )
    rows = list(found.rows)
    return int(rows[0][0]) if len(rows) == 2 else None


def capped_description(description: str, cap: int) -> str:
    """Say on the page (and in the JSON's human_description_en) where counting stopped."""
    return (
        f"{description}, stopped at its first {cap:,} matches "
        f"(more rows match; the count and facets cover those {cap:,})"
    )


async def cap_filter(
    arguments: FilterArguments | None, db: Any, cap: int
) -> FilterArguments | None:
    """Bound each full-text search in arguments to its first cap matches."""
    if arguments is None:
        return None
    capped = False
    clauses = []
    for clause in arguments.where_clauses:
        pieces: list[str] = []
        last = 0
        for found in _FTS_SUBQUERY.finditer(clause):
            name = found["p1"] or found["p2"]
            if name not in arguments.params:
                continue
            try:
                bound = await match_bound(
                    db, found["fts"], found["column"], found["match"], arguments.params, cap
                )
            except (sqlite3.Error, QueryInterrupted):
                bound = None  # a bad raw query: Datasette's own query reports it
            if bound is None:
                continue
            capped = True
            key = f"coop100_bound_{name}"
            arguments.params[key] = bound
            pieces += [clause[last : found.end() - 1], f" and rowid <= :{key})"]
            last = found.end()
        clauses.append("".join(pieces) + clause[last:])
    if not capped:
        return arguments
    arguments.where_clauses = clauses
    arguments.human_descriptions = [
        capped_description(d, cap) if d.startswith("search") else d
        for d in arguments.human_descriptions
    ]
    return arguments


@hookimpl(specname="filters_from_request", wrapper=True)  # type: ignore[untyped-decorator]
def cap_searches(
    request: Any, database: str, table: str, datasette: Any
) -> Generator[None, list[Any], list[Any]]:
    """Cap every search filter of a published table page at settings.SEARCH_MATCH_CAP."""
    answers = yield
    if database != settings.DATABASE or not any(k.startswith("_search") for k in request.args):
        return answers
    if request.args.get("_stream"):
        return answers  # a streamed CSV export asks for every row
    db = datasette.get_database(database)

    def capping(answer: Any) -> Callable[[], Any]:
        async def inner() -> FilterArguments | None:
            return await cap_filter(await await_me_maybe(answer), db, settings.SEARCH_MATCH_CAP)

        return inner

    return [capping(answer) for answer in answers]


# -- the search page -------------------------------------------------------------

# Around the matched words in a snippet; private-use characters no text holds,
# so the snippet can be escaped first and marked up after.
_OPEN, _CLOSE = "\ue000", "\ue001"


@hookimpl(specname="register_routes")  # type: ignore[untyped-decorator]
def search_routes() -> list[tuple[str, Any]]:
    """Serve each searchable table's search page, HTML and JSON."""
    database = re.escape(settings.DATABASE)
    tables = "|".join(re.escape(table) for table in settings.SEARCH_PAGES)
    return [(rf"^/{database}/(?P<table>{tables})/-/search(?P<json>\.json)?$", search_page)]


async def search_page(datasette: Any, request: Any) -> Response:
    """Matches of `?_search=` in relevance order among the first SEARCH_RANK_CAP matches."""
    database, table = settings.DATABASE, request.url_vars["table"]
    await datasette.ensure_permissions(
        request.actor,
        [("view-table", (database, table)), ("view-database", database), "view-instance"],
    )
    search = request.args.get("_search", "").strip()
    page_size = datasette.setting("default_page_size")
    try:
        offset = int(request.args.get("_next") or 0)
    except ValueError:
        offset = -1
    if not 0 <= offset < settings.SEARCH_RANK_CAP:
        return Response.text("_next must be a whole number below the ranked matches", status=400)
    try:
        found = await ranked_matches(
            datasette.get_database(database), table, search, offset, page_size
        )
    except QueryInterrupted:
        return Response.text("The search took too long", status=400)
    except sqlite3.Error as error:
        # What FTS5 refuses even after Datasette's escape_fts, say a lone `"`.
        return Response.text(f"Cannot search for that: {error}"[:200], status=400)
    table_url = datasette.urls.table(database, table)
    here = f"{table_url}/-/search"
    next_url = None
    if found["next"] is not None:
        next_url = f"{here}{request.url_vars['json'] or ''}?" + urlencode(
            {"_search": search, "_next": found["next"]}
        )
    body = {
        "search": search,
        **found,
        "next_url": next_url and datasette.absolute_url(request, next_url),
        "match_cap": settings.SEARCH_MATCH_CAP,
        "rank_cap": settings.SEARCH_RANK_CAP,
        "table_url": datasette.absolute_url(
            request, f"{table_url}?" + urlencode({"_search": search})
        ),
    }
    headers = {"Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}"}
    if request.url_vars["json"]:
        for row in body["rows"]:
            row.pop("snippet")
        return Response.json(body, headers=headers)
    pks = await datasette.get_database(database).primary_keys(table)
    for row in body["rows"]:
        row["url"] = datasette.urls.row(database, table, tilde_encode(str(row[pks[0]])))
        row["snippet"] = Markup(
            str(escape(row["snippet"])).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")
        )
    page = await datasette.render_template(
        ["coop100_search.html"],
        {
            **body,
            "database": database,
            "table": table,
            "here": here,
            "offset": offset,
            "next_url": next_url,
            "table_url": f"{table_url}?" + urlencode({"_search": search}),
            "json_url": f"{here}.json?" + urlencode({"_search": search}),
        },
        request=request,
        view_name="coop100-search",
    )
    return Response.html(page, headers=headers)


async def ranked_matches(
    db: Any, table: str, search: str, offset: int, page_size: int
) -> dict[str, Any]:
    """Return one page of a search's matches in rank order, with the count of matches.

    count: every match up to SEARCH_MATCH_CAP (count_capped says when more match);
    ranked: how many of the first matches the order covers (at most SEARCH_RANK_CAP).
    """
    empty = {"rows": [], "count": 0, "count_capped": False, "ranked": 0, "next": None}
    if not search:
        return empty
    fts = escape_sqlite(f"{table}_fts")
    params: dict[str, Any] = {"search": search}
    match = "escape_fts(:search)"
    count_bound = await match_bound(db, fts, fts, match, params, settings.SEARCH_MATCH_CAP)
    if count_bound is None:
        count = (
            await db.execute(f"select count(*) from {fts} where {fts} match {match}", params)
        ).single_value()
    else:
        count = settings.SEARCH_MATCH_CAP
    rank_bound = await match_bound(db, fts, fts, match, params, settings.SEARCH_RANK_CAP)
    ranked = min(count, settings.SEARCH_RANK_CAP)
    limit = min(page_size, ranked - offset)
    if limit <= 0:
        return empty | {"count": count, "count_capped": count_bound is not None, "ranked": ranked}
    bound = "" if rank_bound is None else "and rowid <= :bound"
    columns = ", ".join(f"t.{escape_sqlite(c)}" for c in await db.table_columns(table))
    found = await db.execute(
        f"with m as (select rowid as r, rank, snippet({fts}, -1, :open, :close, '…', 24) "
        f"as snippet from {fts} where {fts} match {match} {bound} order by rank "
        f"limit {limit} offset {offset}) "
        f"select {columns}, m.snippet as snippet, m.rank as rank "
        f"from m join {escape_sqlite(table)} t on t.rowid = m.r order by m.rank",
        params | {"bound": rank_bound, "open": _OPEN, "close": _CLOSE},
    )
    rows = [dict(row) for row in found.rows]
    return {
        "rows": rows,
        "count": count,
        "count_capped": count_bound is not None,
        "ranked": ranked,
        "next": offset + limit if offset + limit < ranked else None,
    }


@hookimpl(specname="filters_from_request", trylast=True)  # type: ignore[untyped-decorator]
def search_views(request: Any, database: str, table: str, datasette: Any) -> FilterArguments | None:
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
