"""Datasette plugin: answer every request briefly and safely at the HTTP level.

A public, read-only site takes GET and HEAD (and OPTIONS, which says so), sends
security headers with every response, turns every bad request into a short 4xx
before or instead of a traceback, and logs one line per request.

Datasette 0.65's own error handler prints a traceback with every local variable
through rich (installed here by frictionless and typer) for every 404 and 500:
0.2-0.5 s of the event loop and up to 240 KB of log each, so a flood of bad URLs
held the whole site at a few requests a second. `handle_exception` below takes
its place and renders the same error pages without it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import re
import sqlite3
import traceback
import urllib.parse
import warnings
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from typing import Any

from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import Base400, NotFound, Response
from datasette.views.base import DatasetteError
from markupsafe import Markup

from coop100.site.docs import docs_folder, inline_script_hashes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# -- what the site accepts ----------------------------------------------------

# Nothing on a read-only public site needs more: Datasette 0.65's own POST handlers
# are canned write queries (none here) and two tools for signed-in actors.
ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")
# Longer request paths are refused (414) before anything looks at them; the longest
# page of the package is far shorter. A file name past NAME_MAX fails in the OS.
MAX_PATH_BYTES = 2048
MAX_NAME_BYTES = 255

# -- headers sent with every response ----------------------------------------

# Datasette's pages set colours and heights in style="" attributes, some computed
# per page, so styles need 'unsafe-inline'; scripts are its own files plus the few
# fixed inline scripts of its templates, allowed by hash (_inline_script_hashes).
_CSP = (
    "default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Datasette's own choice for its pages: links out to sources carry no address.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# -- errors ----------------------------------------------------------------

# SQLite result codes that mean the server is short of something, not that the
# request was wrong: busy, locked, out of memory, I/O, disk full, cannot open.
_UNAVAILABLE_CODES = frozenset({5, 6, 7, 10, 13, 14})
RETRY_AFTER_SECONDS = 5
_MAX_LOGGED = 200
_MAX_MESSAGE = 300
_log = logging.getLogger("uvicorn.error")
# A table page that fails (a facet on no such column) drops the facet coroutines
# it had started, and Python warns about each in two lines of log.
warnings.filterwarnings(
    "ignore", r"coroutine '\w+\.facet_results' was never awaited", RuntimeWarning
)
warnings.filterwarnings(
    "ignore", r"coroutine '.*execute_suggested_facets' was never awaited", RuntimeWarning
)


@hookimpl  # type: ignore[untyped-decorator]
def asgi_wrapper(datasette: Any) -> Callable[[App], App]:
    """Refuse other methods and malformed requests, and add security headers.

    Also stops Datasette writing every failed query (up to the whole SQL and its
    parameters) to the log: the visitor gets the error, the access log the URL.
    """
    for database in datasette.databases.values():
        # Datasette builds its app twice (its in-process client, then the server).
        if not hasattr(database.execute, "__wrapped__"):
            database.execute = _quiet(database.execute)
    headers = [
        (b"content-security-policy", _csp(datasette).encode()),
        *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
    ]

    def wrap(app: App) -> App:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = False

            async def send_with_headers(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    present = {bytes(k).lower() for k, _ in message.get("headers", [])}
                    extra = [(k, v) for k, v in headers if k not in present]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)

            refusal = await _refusal(datasette, scope)
            if refusal is not None:
                await refusal.asgi_send(send_with_headers)
                return
            try:
                await app(scope, receive, send_with_headers)
            except Exception as exception:  # noqa: BLE001 - the last line of defence
                _log_unexpected(scope, exception)
                if not started:
                    response = await _error(datasette, scope["path"], 500, "Internal error")
                    await response.asgi_send(send_with_headers)

        return guarded

    return wrap


@hookimpl(wrapper=True)  # type: ignore[untyped-decorator]
def handle_exception(
    datasette: Any, request: Any, exception: Exception
) -> Generator[None, list[Any], list[Any]]:
    """Answer in place of Datasette's handler: same pages, no traceback, 4xx for bad requests.

    A wrapper, so Datasette's own handler (which prints the traceback) never runs:
    its result is dropped before Datasette calls it.
    """
    yield

    async def respond() -> Response:
        return await _exception_response(datasette, request, exception)

    return [respond]


@hookimpl(wrapper=True)  # type: ignore[untyped-decorator]
def register_output_renderer(datasette: Any) -> Generator[None, list[Any], list[Any]]:
    """Guard Datasette's .blob renderer against rows it cannot answer from.

    It hashes each value of ?_blob_column= to find ?_blob_hash= and fails with a
    500 on text or null (the package has no blobs); with no row it fails too.
    """
    renderers = yield
    return [
        {**r, "render": _render_blob(r["render"])}
        if isinstance(r, dict) and r.get("extension") == "blob"
        else r
        for r in renderers
    ]


def _render_blob(render: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def render_blob(
        datasette: Any,
        database: str,
        rows: list[Any],
        columns: list[str],
        request: Any,
        table: str | None,
        view_name: str,
    ) -> Any:
        column = request.args.get("_blob_column")
        if column in columns and "_blob_hash" in request.args:
            # Only binary values have a hash to match; none matching is Datasette's 400.
            rows = [row for row in rows if isinstance(row[column], bytes)]
        elif column in columns and not rows:
            raise NotFound("No row matches")
        return await render(datasette, database, rows, columns, request, table, view_name)

    return render_blob


def _quiet(execute: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(execute)
    async def quiet(*args: Any, **kwargs: Any) -> Any:
        # Datasette's own callers (and coop100.site.sqlguard) ask for the log by name.
        return await execute(*args, **{**kwargs, "log_sql_errors": False})

    return quiet


async def _exception_response(datasette: Any, request: Any, exception: Exception) -> Response:
    headers: dict[str, str] = {}
    title = None
    if isinstance(exception, Base400):
        status, message = exception.status, str(exception.args[0] if exception.args else "")
    elif isinstance(exception, DatasetteError):
        status, message, title = exception.status, exception.message, exception.title
        if exception.message_is_html:
            # The only such message (a query past the time limit) carries a script
            # that sizes its text box; the page does without it, and the CSP lets
            # no script through that is not fixed in advance.
            message = Markup(re.sub(r"<script>.*?</script>", "", message, flags=re.S))
        if status == 500:
            # Datasette raises these for a request it cannot answer (bad _sort,
            # _through, SQL in _where): the request's fault unless SQLite ran short.
            status = _sqlite_status(exception.__context__) or 400
    elif isinstance(exception, sqlite3.Error):
        status, message = _sqlite_status(exception) or 400, str(exception)
    else:
        _log_unexpected(request.scope, exception)
        status, message = 500, "Internal error"
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return await _error(datasette, request.path, status, message, title=title, headers=headers)


def _sqlite_status(error: BaseException | None) -> int | None:
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _UNAVAILABLE_CODES:
            return 503
        return 400
    return None


async def _error(
    datasette: Any,
    path: str,
    status: int,
    message: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Return Datasette's error page for status, as JSON for a .json URL."""
    if not isinstance(message, Markup) and len(message) > _MAX_MESSAGE:
        # Datasette's messages quote the request ("Cannot sort table by …").
        message = message[:_MAX_MESSAGE] + "…"
    info = {"ok": False, "error": message, "status": status, "title": title}
    if path.endswith(".json"):
        return Response.json(info, status=status, headers=headers)
    template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
    context = {
        **info,
        "urls": datasette.urls,
        "app_css_hash": datasette.app_css_hash(),
        "menu_links": lambda: [],
    }
    return Response.html(await template.render_async(context), status=status, headers=headers)


# -- refusing before Datasette sees the request ---------------------------------


async def _refusal(datasette: Any, scope: Scope) -> Response | None:
    """Return the response that refuses this request, or None to let it through."""
    path: str = scope["path"]
    method = scope["method"]
    allow = {"Allow": ", ".join(ALLOWED_METHODS)}
    if method == "OPTIONS":
        headers = dict(scope.get("headers") or [])
        if b"origin" in headers and b"access-control-request-method" in headers:
            return None  # a CORS preflight: coop100.site.downloads answers it
        return Response("", status=204, headers=allow)
    if method not in ALLOWED_METHODS:
        return await _error(
            datasette, path, 405, f"{method} is not allowed: this site is read-only", headers=allow
        )
    raw_path: bytes = scope.get("raw_path") or path.encode()
    if len(raw_path) > MAX_PATH_BYTES:
        too_long = f"The address is longer than {MAX_PATH_BYTES} bytes"
        return await _error(datasette, path, 414, too_long)
    if any(len(part.encode()) > MAX_NAME_BYTES for part in path.split("/")):
        return await _error(datasette, path, 404, "Not found")
    query = scope.get("query_string", b"").decode("latin-1")
    problem = _bad_parameter(urllib.parse.parse_qsl(query, keep_blank_values=True))
    problem = problem or await _bad_for_page(datasette, path, query)
    if problem is not None:
        return await _error(datasette, path, 400, problem)
    return None


async def _bad_for_page(datasette: Any, path: str, query: str) -> str | None:
    """Return why the query would fail on this kind of page, if it would."""
    csv = _DATABASE_CSV.match(path)
    if csv and csv.group(1) in datasette.databases and not _values(query, "sql"):
        return "A database's CSV is the result of a query: add ?sql="
    if "_next" in query and await _is_view(datasette, path):
        if not all(_DIGITS.fullmatch(v) for v in _values(query, "_next")):
            return "_next on a view must be a row offset (a whole number)"
    return None


def _is_json_list(value: str) -> bool:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, list) and all(
        isinstance(v, str | int | float) or v is None for v in parsed
    )


def _is_json_object(value: str, keys: tuple[str, ...] = ()) -> bool:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and all(key in parsed for key in keys)


# What Python's int() reads that SQLite would: ASCII digits only ("²".isdigit() is true).
_DIGITS = re.compile(r"[0-9]+")
# Filters Datasette hands to SQLite as integers when the value is all digits.
_NUMERIC_FILTERS = ("__gt", "__gte", "__lt", "__lte")
_MAX_INTEGER = 2**63 - 1
# Filters Datasette reads as a JSON list when the value starts with "[".
_LIST_FILTERS = ("__in", "__notin")


def _is_integer(value: str) -> bool:
    """Tell whether Datasette's int(value) gives an integer SQLite can hold."""
    try:
        return int(value) <= _MAX_INTEGER
    except ValueError:
        return False


def _is_facet(value: str) -> bool:
    config = json.loads(value) if _is_json_object(value) else {}
    return isinstance(config.get("column") or config.get("simple"), str)


def _bad_parameter(pairs: list[tuple[str, str]]) -> str | None:
    """Return why one of these query parameters would fail inside Datasette, if one would.

    Each rule is a value Datasette parses without checking (int(), json.loads())
    and so fails with a 500; everything else is left to Datasette and SQLite.
    """
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            return "Parameters may not contain NUL characters"
        if name == "_timelimit" and not _DIGITS.fullmatch(value):
            return "_timelimit must be a whole number of milliseconds"
        if name == "_through" and not _is_json_object(value, ("table", "column", "value")):
            return '_through must be a JSON object: {"table": …, "column": …, "value": …}'
        if name.startswith("_facet") and value.startswith("{") and not _is_facet(value):
            return f'{name} must be a column name or a JSON object {{"simple": column}}'
        if name.endswith(_NUMERIC_FILTERS) and value.isdigit() and not _is_integer(value):
            return f"{name} must be a number up to {_MAX_INTEGER}, SQLite's largest integer"
        if name.endswith(_LIST_FILTERS) and value.startswith("[") and not _is_json_list(value):
            return f"{name} must be a comma-separated list or a JSON list of values"
    return None


def _values(query: str, name: str) -> list[str]:
    return [v for k, v in urllib.parse.parse_qsl(query) if k == name]


_DATABASE_CSV = re.compile(r"^/([^/.]+)\.csv$")
_TABLE_PATH = re.compile(r"^/([^/.]+)/([^/.]+)(?:\.\w+)?$")
_VIEWS: dict[str, frozenset[str]] = {}


async def _is_view(datasette: Any, path: str) -> bool:
    """Tell whether path is a view's page (where Datasette reads _next as an offset)."""
    match = _TABLE_PATH.match(path)
    if match is None or match.group(1) not in datasette.databases:
        return False
    database = match.group(1)
    if database not in _VIEWS:
        # The served databases are immutable: their views are read once.
        _VIEWS[database] = frozenset(await datasette.get_database(database).view_names())
    return tilde_decode(match.group(2)) in _VIEWS[database]


# -- headers -------------------------------------------------------------------

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_EXPRESSION = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _csp(datasette: Any) -> str:
    hashes = _inline_script_hashes(datasette) | inline_script_hashes(docs_folder(datasette))
    return _CSP.format(scripts=" ".join(sorted(hashes)))


def _inline_script_hashes(datasette: Any) -> set[str]:
    """Hash every inline script of the templates that is fixed for this instance.

    A script whose only template expressions are values known here (whether
    facets are allowed) is hashed as the page renders it; one holding anything
    else (a plugin's extra_body_script) is left out, so the CSP blocks it.
    """
    env = datasette.jinja_env
    known = {"datasette_allow_facet": "true" if datasette.setting("allow_facet") else "false"}
    hashes = set()
    for name in env.list_templates(extensions=["html"]):
        source = env.loader.get_source(env, name)[0]
        for body in _INLINE_SCRIPT.findall(source):
            if "{%" in body or any(v not in known for v in _EXPRESSION.findall(body)):
                continue
            rendered = _EXPRESSION.sub(lambda m: known[m.group(1)], body)
            digest = hashlib.sha256(rendered.encode()).digest()
            hashes.add(f"'sha256-{base64.b64encode(digest).decode()}'")
    return hashes


# -- logging -------------------------------------------------------------------


def _log_unexpected(scope: Scope, exception: BaseException) -> None:
    """Log an error no rule foresaw in one line: what, where in the code, which request."""
    frames = traceback.extract_tb(exception.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 2)[-1]}:{frames[-1].lineno}" if frames else ""
    path = scope.get("path", "")[:_MAX_LOGGED]
    text = repr(str(exception)[:_MAX_LOGGED])
    _log.error("%s %r: %s %s%s", scope.get("method"), path, type(exception).__name__, text, where)
