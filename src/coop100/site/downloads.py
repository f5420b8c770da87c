"""Serve the published files as a file server should, and let any web page read the site.

Datasette 0.65 serves its --static folders and the database download whole: no
Range, no validators, Parquet as text/plain, so polars and DuckDB cannot read the
files where they are published. An ASGI wrapper answers those URLs first, with
Starlette's FileResponse (ranges, If-Range, HEAD) and StaticFiles' test of
If-None-Match and If-Modified-Since. What it serves comes from a manifest written
with the site (`write_downloads`): each file's sha256, which is its ETag and
Repr-Digest and so the same on every replica, its media type, and the version in
its immutable URL. The wrapper also puts CORS headers on every response and a weak
ETag on the pages a cache may keep.

Importing this module must stay cheap: every served process does it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from datasette import hookimpl
from datasette.version import __version__ as datasette_version
from starlette.datastructures import Headers
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles

from coop100.site import settings
from coop100.site.docs import DocsServer, docs_folder

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# One line per download: method, path, status and body bytes sent.
log = logging.getLogger("coop100.downloads")
_MOUNT = f"/{settings.DOWNLOADS_MOUNT}/"
_VERSIONS = f"{_MOUNT}{settings.VERSIONS_PREFIX}/"
_READS = ("GET", "HEAD")
# Arguments that make a page's content depend on more than the database: its own
# SQL (which may call random() or date('now')) or its own cache lifetime.
_UNPINNED_ARGS = frozenset({"sql", "_where", "_ttl"})
# Datasette's Vary on every page: a cookie or credentials make a page private.
_VARY = b"Cookie, Authorization"
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", ", ".join(settings.CORS_EXPOSE_HEADERS).encode()),
]
_PREFLIGHT = [
    *_CORS,
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-allow-headers", ", ".join(settings.CORS_ALLOW_HEADERS).encode()),
    (b"access-control-max-age", str(settings.CORS_MAX_AGE_SECONDS).encode()),
]


@dataclass(frozen=True)
class Download:
    """One served file: where it lives under the downloads folder and what it holds."""

    file: str  # its path under the downloads folder, and under /data/v/<version>/
    url: str  # its stable URL
    size: int
    sha256: str
    media_type: str
    inode: int
    mtime_ns: int

    def headers(self, immutable: bool) -> dict[str, str]:
        """The headers every response for this file carries, besides Starlette's."""
        digest = base64.b64encode(bytes.fromhex(self.sha256)).decode()
        cache = settings.IMMUTABLE_CACHE_CONTROL if immutable else settings.STABLE_CACHE_CONTROL
        return {
            "etag": f'"{self.sha256}"',
            "repr-digest": f"sha-256=:{digest}:",
            "cache-control": cache,
        }


@dataclass(frozen=True)
class Downloads:
    """Every served file and the version that names this set of them."""

    folder: Path
    version: str
    files: dict[str, Download]  # by path under the folder

    def versioned_url(self, file: str) -> str:
        """The URL under which file's bytes never change."""
        return f"{_VERSIONS}{self.version}/{file}"


def write_downloads(folder: Path, sources: dict[str, tuple[Path, str, str]]) -> Downloads:
    """Link each source into folder and record what it holds in the manifest beside it.

    Args:
        folder: the downloads folder, emptied of anything not in sources.
        sources: path under folder -> (file to serve, stable URL, media type).

    Files are hard links, so each replica serves the bytes it hashed even if a build
    replaces the published files meanwhile; a file whose inode, size and time are
    unchanged since the last manifest keeps its sha256 without being read again.
    """
    manifest = folder.parent / settings.DOWNLOADS_MANIFEST
    known = _read_manifest(manifest, folder).files if manifest.is_file() else {}
    files: dict[str, Download] = {}
    for file, (source, url, media_type) in sorted(sources.items()):
        target = folder / file
        _link(source, target)
        stat = target.stat()
        old = known.get(file)
        if old and (old.inode, old.size, old.mtime_ns) == _identity(stat):
            sha256 = old.sha256
        else:
            sha256 = _sha256(target)
        files[file] = Download(
            file, url, stat.st_size, sha256, media_type, stat.st_ino, stat.st_mtime_ns
        )
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        elif not path.is_dir() and path.relative_to(folder).as_posix() not in files:
            path.unlink()
    lines = "".join(f"{d.file} {d.sha256}\n" for d in files.values())
    version = hashlib.sha256(lines.encode()).hexdigest()[: settings.VERSION_CHARS]
    tmp = manifest.with_name(f".tmp-{os.getpid()}-{manifest.name}")
    body = {"version": version, "files": [asdict(d) for d in files.values()]}
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(manifest)
    return Downloads(folder, version, files)


def read_downloads(folder: Path) -> Downloads:
    """Read the manifest `write_downloads` left beside folder."""
    return _read_manifest(folder.parent / settings.DOWNLOADS_MANIFEST, folder)


def _read_manifest(manifest: Path, folder: Path) -> Downloads:
    body = json.loads(manifest.read_text())
    files = {entry["file"]: Download(**entry) for entry in body["files"]}
    return Downloads(folder, body["version"], files)


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _link(source: Path, target: Path) -> None:
    if target.is_file() and os.path.samefile(source, target):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, tmp)
    # One rename: a replica already serving this folder never sees the file missing.
    tmp.replace(target)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def honoured_range(value: str) -> bool:
    """Whether a Range header is one RFC 9110 says to act on: valid byte ranges.

    A server must ignore a range unit it does not know and may ignore an invalid
    range set; both get the whole file (200), as from nginx, where Starlette would
    answer 400. Valid ranges, satisfiable or not, are left to Starlette.
    """
    unit, equals, ranges = value.partition("=")
    if not equals or unit.lower() != "bytes":
        return False
    specs = [spec.strip(" \t") for spec in ranges.split(",")]
    if not any(specs):
        return False
    for spec in filter(None, specs):
        first, dash, last = spec.partition("-")
        if not dash or not (first or last):
            return False
        if not all(part.isascii() and part.isdigit() for part in (first, last) if part):
            return False
        if first and last and int(last) < int(first):
            return False
    return True


class DownloadServer:
    """Answer the download URLs from the manifest; every other URL is not ours."""

    def __init__(self, downloads: Downloads) -> None:
        self.downloads = downloads
        self.stable = {d.url: d for d in downloads.files.values()}
        # Only for its test of If-None-Match and If-Modified-Since.
        self.conditions = StaticFiles(directory=downloads.folder, check_dir=False)

    def claims(self, path: str) -> bool:
        """Whether path is a download URL (served or not found here), not a page."""
        return path in self.stable or path.startswith(_MOUNT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, sent = 0, 0

        async def counting(message: Message) -> None:
            nonlocal status, sent
            status = message.get("status", status)
            sent += len(message.get("body", b""))
            await send(message)

        await self.response(scope)(scope, receive, counting)
        # uvicorn's access log has no sizes: this one shows what ranged reads cost.
        log.info("%s %s %d %d", scope["method"], scope["path"], status, sent)

    def response(self, scope: Scope) -> Response:
        """The response to a request for a download URL."""
        path: str = scope["path"]
        found, immutable = self.stable.get(path), False
        if found is None and path.startswith(_VERSIONS):
            version, _, file = path.removeprefix(_VERSIONS).partition("/")
            if version != self.downloads.version:
                current = self.downloads.versioned_url(file)
                return PlainTextResponse(
                    f"Version {version} is not served here; this version is at {current}\n",
                    status_code=404,
                )
            found, immutable = self.downloads.files.get(file), True
        if found is None:
            return PlainTextResponse("Not found\n", status_code=404)
        if scope["method"] not in _READS:
            return PlainTextResponse(
                "Method not allowed\n", status_code=405, headers={"Allow": ", ".join(_READS)}
            )
        path_on_disk = self.downloads.folder / found.file
        stat = path_on_disk.stat()
        if _identity(stat) != (found.inode, found.size, found.mtime_ns):
            return PlainTextResponse(
                f"{found.url} changed after the server started; it must be restarted\n",
                status_code=503,
            )
        request = Headers(scope=scope)
        if "range" in request and not honoured_range(request["range"]):
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
        headers = found.headers(immutable)
        if not immutable:
            # The same bytes at the URL that names this version (RFC 9110, 8.7).
            headers["content-location"] = self.downloads.versioned_url(found.file)
        response = FileResponse(
            path_on_disk, stat_result=stat, media_type=found.media_type, headers=headers
        )
        if self.conditions.is_not_modified(response.headers, request):
            return NotModifiedResponse(response.headers)
        return response


def page_tag(downloads: Downloads, metadata: Any) -> str:
    """The weak ETag of every page: the served files, the site's code and metadata.

    The database is immutable, so a page can change only with a new database, new
    metadata or new code (coop100's site package or Datasette); any of those gives
    a new tag.
    """
    digest = hashlib.sha256(f"{downloads.version} {datasette_version}\n".encode())
    digest.update(json.dumps(metadata, sort_keys=True).encode())
    code = Path(__file__).parent
    for path in sorted(code.rglob("*")):
        if path.suffix in (".py", ".html", ".css", ".js"):
            digest.update(path.relative_to(code).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return f'W/"{digest.hexdigest()[: settings.VERSION_CHARS]}"'


def _cacheable(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a response's headers let a shared cache keep it: max-age > 0, no cookie."""
    fields = {k.decode("latin-1").lower(): v.decode("latin-1").lower() for k, v in headers}
    if "set-cookie" in fields or "etag" in fields:
        return False
    directives = [d.strip() for d in fields.get("cache-control", "").split(",")]
    if {"no-store", "no-cache", "private"} & set(directives):
        return False
    return any(d.startswith("max-age=") and d != "max-age=0" for d in directives)


def _tags(value: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in value.split(",")]


class SiteHTTP:
    """The ASGI app around Datasette: downloads, CORS on everything, ETags on pages."""

    def __init__(
        self,
        app: ASGIApp,
        server: DownloadServer | None,
        tag: str | None,
        docs: DocsServer | None = None,
    ) -> None:
        self.app = app
        self.server = server
        self.tag = tag
        self.docs = docs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if (
            scope["method"] == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        ):
            await _send_empty(send, 204, _PREFLIGHT)
            return
        send = _adding(send, _CORS)
        if self.server is not None and self.server.claims(scope["path"]):
            await self.server(scope, receive, send)
            return
        if self.docs is not None and self.docs.claims(scope["path"]):
            await self.docs(scope, receive, send)
            return
        if self.tag is None or scope["method"] not in _READS or not self._pinned(scope, headers):
            await self.app(scope, receive, send)
            return
        tag = self.tag.encode()
        if self.tag.removeprefix("W/") in _tags(headers.get("if-none-match", "")):
            # The headers Datasette gives the same page anonymously, without running it.
            cache = f"max-age={settings.CACHE_TTL_SECONDS}".encode()
            await _send_empty(
                send, 304, [(b"etag", tag), (b"cache-control", cache), (b"vary", _VARY)]
            )
            return

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                if _cacheable(message.get("headers", [])):
                    message = {**message, "headers": [*message["headers"], (b"etag", tag)]}
            await send(message)

        await self.app(scope, receive, send_tagged)

    @staticmethod
    def _pinned(scope: Scope, headers: Headers) -> bool:
        """Whether the page is the same for everyone until the site changes.

        Datasette marks pages asked for with a cookie or credentials private, no-store.
        """
        if "cookie" in headers or "authorization" in headers:
            return False
        query = scope.get("query_string", b"").decode("latin-1")
        return not any(key in _UNPINNED_ARGS for key, _ in parse_qsl(query))


def _adding(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def send_with(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with


async def _send_empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


@hookimpl(specname="asgi_wrapper", tryfirst=True)  # type: ignore[untyped-decorator]
def serve_downloads(datasette: Any) -> Callable[[ASGIApp], ASGIApp]:
    """Wrap Datasette in `SiteHTTP`, serving the downloads folder mounted at /data/
    and the documentation at /docs/ (coop100.site.docs).

    tryfirst makes this the innermost wrapper: any other plugin's wrapper (method
    checks, security headers) sees its responses too.
    """
    folder = dict(datasette.static_mounts).get(settings.DOWNLOADS_MOUNT)
    manifest = Path(folder).parent / settings.DOWNLOADS_MANIFEST if folder else None
    downloads = read_downloads(Path(folder)) if folder and manifest and manifest.is_file() else None

    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False

    docs = docs_folder(datasette)

    def wrap(app: ASGIApp) -> ASGIApp:
        server = DocsServer(docs) if docs else None
        if downloads is None:
            return SiteHTTP(app, None, None, server)
        tag = page_tag(downloads, datasette.metadata())
        return SiteHTTP(app, DownloadServer(downloads), tag, server)

    return wrap
