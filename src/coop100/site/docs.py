"""Serve the documentation site (built by `make docs`, see mkdocs.yml) at /docs/.

MkDocs writes a folder of static pages whose URLs end in `/` (`/docs/using/http/`
is `using/http/index.html`). Starlette's StaticFiles serves such a folder: index
files, the redirect of `/docs` to `/docs/`, MkDocs' own 404.html, ETag and
Last-Modified with their 304s, HEAD. It runs inside the site's ASGI wrappers, so every
response gets the same security headers, CSP and CORS as the rest of the site.

Material's pages hold inline scripts that are the same on every page (mkdocs.yml fixes
the one that would name each page's path); `inline_script_hashes` hashes those found in
the built pages, so the site's Content-Security-Policy allows exactly them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.staticfiles import StaticFiles

from coop100.site import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = f"/{settings.DOCS_MOUNT}"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def docs_folder(datasette: Any) -> Path | None:
    """The built documentation Datasette was given as a static mount, if any."""
    folder = dict(datasette.static_mounts).get(settings.DOCS_MOUNT)
    return Path(folder) if folder and (Path(folder) / "index.html").is_file() else None


class DocsServer:
    """Answer /docs and everything below it from the built documentation folder."""

    def __init__(self, folder: Path) -> None:
        self.files = StaticFiles(directory=folder, html=True)

    @staticmethod
    def claims(path: str) -> bool:
        return path == PREFIX or path.startswith(f"{PREFIX}/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = settings.STABLE_CACHE_CONTROL.encode()

        async def send_cached(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"cache-control", cache)]}
            await send(message)

        await self.files({**scope, "root_path": PREFIX}, receive, send_cached)


def inline_script_hashes(folder: Path | None) -> set[str]:
    """The CSP hash of every distinct inline script in the built pages."""
    if folder is None:
        return set()
    bodies = {
        body
        for page in folder.rglob("*.html")
        for body in _INLINE_SCRIPT.findall(page.read_text(encoding="utf-8"))
    }
    return {
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in bodies
    }
