"""Read table-page arguments as a person means them: true/false for booleans, no empty search.

SQLite has no boolean type: the database stores the package's booleans as 1 and 0,
and Datasette's JSON shows them so, while the CSV says true and false. Datasette
compares `?preferred=true` with the stored 1 as text and finds nothing. And an
empty `?_search=` (what the search box sends when left blank) reaches SQLite's
full-text MATCH as an empty query, a syntax error (HTTP 400). This ASGI wrapper
rewrites both in the query string before Datasette reads it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl

from coop100.site import settings
from coop100.site.downloads import ASGIApp, Receive, Scope, Send

_TABLE_PAGE = re.compile(rf"^/{re.escape(settings.DATABASE)}/([^/]+?)(?:\.\w+)?$")
# Datasette filters whose value is one column value; 1 and 0 pass as they are.
_ONE_VALUE = ("exact", "not")
_BOOLEANS = {"true": "1", "false": "0"}


def rewritten(query: str, booleans: list[str]) -> str | None:
    """The query string with true/false as 1/0 and blank searches dropped, or None if unchanged."""
    # latin-1 both ways keeps every byte of what the client sent.
    pairs = parse_qsl(query, keep_blank_values=True, encoding="latin-1")
    kept = []
    for key, value in pairs:
        if key.startswith("_search") and key != "_searchmode" and not value.strip():
            continue
        column, _, op = key.partition("__")
        if column in booleans and (op or "exact") in _ONE_VALUE:
            value = _BOOLEANS.get(value.strip().lower(), value)
        kept.append((key, value))
    return None if kept == pairs else urlencode(kept, encoding="latin-1")


@hookimpl(specname="asgi_wrapper", tryfirst=True)  # type: ignore[untyped-decorator]
def read_arguments(datasette: Any) -> Any:
    """Rewrite table pages' query strings: see the module's docstring."""
    booleans = (datasette.plugin_config("coop100") or {}).get("boolean_columns", {})

    def wrap(app: ASGIApp) -> ASGIApp:
        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            page = _TABLE_PAGE.match(scope.get("path", "")) if scope["type"] == "http" else None
            if page and scope.get("query_string"):
                query = rewritten(
                    scope["query_string"].decode("latin-1"), booleans.get(page[1], [])
                )
                if query is not None:
                    scope = {**scope, "query_string": query.encode("latin-1")}
            await app(scope, receive, send)

        return asgi

    return wrap
