"""The codebook page `/codebook`, and the diagram of the tables on the landing page.

The build writes the codebook (coop100.write.codebook) and the diagram (coop100.write.diagram)
as files of the package; the site renders the codebook's Markdown once, when the
site is built (`codebook_metadata`), so the page is the published file, and shows
the diagram from where the package's files are served. The stylesheet
static/codebook.css styles the page, the landing page's figure and the loading
snippets of the table pages (coop100.site.snippets).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import Response
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import escape

from coop100 import settings as package_settings
from coop100.site import settings
from coop100.site.landing import stylesheet_route

CODEBOOK_URL = "/codebook"
CSS_URL = "/-/coop100-codebook.css"


def _slug(text: str) -> str:
    """A heading's id as GitHub gives it, so the file's own links work on both."""
    return re.sub(r"[^a-z0-9 _-]", "", text.lower()).replace(" ", "-")


def _markdown(base: str) -> MarkdownIt:
    """Markdown as the page shows it: ids on headings, relative links under base,
    each table in a region that scrolls sideways on a narrow screen, named by its heading."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def label(state: Any) -> None:
        heading = ""
        for i, token in enumerate(state.tokens):
            if token.type == "heading_open":
                heading = state.tokens[i + 1].content.replace("`", "")
                token.attrSet("id", _slug(heading))
            elif token.type == "table_open":
                token.meta["label"] = heading
            for link in token.children or []:
                href = str(link.attrGet("href") or "") if link.type == "link_open" else ""
                if href and not href.startswith(("#", "/")) and ":" not in href:
                    link.attrSet("href", posixpath.join(base, href))

    md.core.ruler.push("coop100_codebook", label)

    def wrapped(before: bool) -> Any:
        def render(
            renderer: RendererHTML,
            tokens: Sequence[Token],
            idx: int,
            options: OptionsDict,
            env: EnvType,
        ) -> str:
            tag = renderer.renderToken(tokens, idx, options, env)
            if not before:
                return tag + "</div>\n"
            name = escape(tokens[idx].meta.get("label", "table"))
            return f'<div class="table-scroll" role="region" tabindex="0" aria-label="{name}">{tag}'

        return render

    md.add_render_rule("table_open", wrapped(before=True))
    md.add_render_rule("table_close", wrapped(before=False))
    return md


def codebook_metadata(package_path: Path, descriptor: dict[str, Any]) -> dict[str, Any]:
    """The codebook as HTML and where its files are served, for the site's metadata
    ({} for a package without a codebook)."""
    by_name = {r.get("name"): r for r in descriptor.get("resources", [])}
    codebook = by_name.get(package_settings.CODEBOOK_RESOURCE)
    diagram = by_name.get(package_settings.DIAGRAM_RESOURCE)
    if codebook is None:
        return {}
    url = f"/{settings.DOWNLOADS_MOUNT}/{codebook['path']}"
    text = (package_path.parent / codebook["path"]).read_text(encoding="utf-8")
    # The page's own heading says what the file's first line does.
    _, _, body = text.partition("\n")
    return {
        "page_url": CODEBOOK_URL,
        "url": url,
        "diagram_url": f"/{settings.DOWNLOADS_MOUNT}/{diagram['path']}" if diagram else "",
        "html": _markdown(posixpath.dirname(url)).render(body),
    }


def _codebook(datasette: Any) -> dict[str, Any]:
    found: dict[str, Any] = datasette.metadata().get("plugins", {}).get("coop100", {})
    return found.get("codebook") or {}


@hookimpl(specname="register_routes")  # type: ignore[untyped-decorator]
def codebook_routes() -> list[tuple[str, Any]]:
    return [(rf"^{CODEBOOK_URL}$", codebook_page), stylesheet_route(CSS_URL, "codebook.css")]


@hookimpl(specname="extra_css_urls")  # type: ignore[untyped-decorator]
def codebook_css_urls(view_name: str, database: str | None) -> list[str]:
    """The stylesheet of the codebook, the landing page's figure and the table pages' snippets."""
    if view_name in ("index", "coop100_codebook") or (
        view_name == "table" and database == settings.DATABASE
    ):
        return [CSS_URL]
    return []


@hookimpl(specname="extra_template_vars")  # type: ignore[untyped-decorator]
def codebook_template_vars(template: str, datasette: Any) -> dict[str, Any]:
    """Give the landing page where the codebook and the diagram are."""
    if template != "index.html":
        return {}
    return {"coop100_codebook": _codebook(datasette)}


async def codebook_page(datasette: Any, request: Any) -> Response:
    """Every table and field of the package, from the published codebook."""
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    codebook = _codebook(datasette)
    if not codebook:
        return Response.text("This package has no codebook.\n", status=404)
    page = await datasette.render_template(
        ["coop100_codebook.html"],
        {"metadata": datasette.metadata(), "coop100_codebook": codebook},
        request=request,
        view_name="coop100_codebook",
    )
    return Response.html(page, headers={"Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}"})
