"""The landing page `/` and the site's stylesheet: what a visitor sees first.

The page says what the data is and links every download (templates/index.html,
from the metadata and the inspect file's row counts); the stylesheet styles
every page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import Response
from datasette.version import __version__ as datasette_version

from coop100.site import settings


@hookimpl(specname="extra_template_vars")  # type: ignore[untyped-decorator]
def landing_row_counts(template: str, datasette: Any) -> Any:
    """Give the landing page the row count of every table (read from the inspect file)."""

    async def row_counts() -> dict[str, dict[str, int]]:
        if template != "index.html" or settings.DATABASE not in datasette.databases:
            return {"row_counts": {}}
        counts = await datasette.get_database(settings.DATABASE).table_counts()
        return {"row_counts": {name: n for name, n in counts.items() if n is not None}}

    return row_counts


@hookimpl(specname="register_routes")  # type: ignore[untyped-decorator]
def landing_routes(datasette: Any) -> list[tuple[str, Any]]:
    """Serve the landing page `/` ourselves; `/.json` stays Datasette's own index."""
    return [(r"^/$", landing_page), stylesheet_route(CSS_URL, "coop100.css")]


CSS_URL = "/-/coop100.css"
_STATIC = Path(__file__).parent / "static"


@hookimpl(specname="extra_css_urls")  # type: ignore[untyped-decorator]
def site_css() -> list[str]:
    """Add the site's stylesheet to every page."""
    return [CSS_URL]


def stylesheet_route(url: str, name: str) -> tuple[str, Callable[[], Awaitable[Response]]]:
    """The route serving static/<name> at url (Datasette serves plugin static/ folders
    only for packages); the landing page's stylesheet and the row pages' both use it."""
    path = _STATIC / name

    async def stylesheet() -> Response:
        return Response(
            path.read_text(encoding="utf-8"),
            content_type="text/css; charset=utf-8",
            headers={"Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}"},
        )

    return rf"^{re.escape(url)}$", stylesheet


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
    links = [f'{json_url}; rel="alternate"; type="application/json+datasette"']
    release = datasette.metadata().get("plugins", {}).get("coop100", {}).get("release", {})
    if release.get("cite_as"):  # the DOI, once there is one (RFC 8574)
        links.append(f'<{release["cite_as"]}>; rel="cite-as"')
    return Response.html(
        page,
        headers={
            "Link": ", ".join(links),
            "Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}",
        },
    )
