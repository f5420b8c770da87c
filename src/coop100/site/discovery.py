"""Datasette plugin: what lets people and crawlers find and cite the package.

- `/changes`: what changed in this version (the newest release notes);
- schema.org JSON-LD: a `Dataset` on the landing page and on each table page;
- `/robots.txt` and `/sitemap.xml`: crawl the landing, table and row pages, not
  arbitrary SQL, exports or facet permutations (any URL with a query string).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape as xml_escape

from datasette import hookimpl
from datasette.utils import escape_sqlite, tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup

from coop100.site import settings
from coop100.site.codebook import CODEBOOK_URL
from coop100.site.jsonld import script

# Crawlers may fetch pages without a query string. Disallowed: every URL with one
# (SQL, facets, sorts, filters, pagination), Datasette's exports (.json, .csv), the
# database file and the package's files (described by the JSON-LD instead), and
# Datasette's own pages under /-/ but the stylesheets pages need.
ROBOTS = """\
User-agent: *
Allow: /$
Allow: /-/static/
Allow: /-/coop100.css
Disallow: /*?
Disallow: /*.json$
Disallow: /*.csv$
Disallow: /*.db$
Disallow: /-/
Disallow: /{mount}/
Sitemap: {base}/sitemap.xml
"""


@hookimpl  # type: ignore[untyped-decorator]
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    return [
        (rf"^{settings.CHANGES_URL}$", changes_page),
        (r"^/robots\.txt$", robots_txt),
        (r"^/sitemap\.xml$", sitemap_index),
        (r"^/sitemap-(?P<part>pages|[a-z_]+-\d+)\.xml$", sitemap_part),
    ]


def _jsonld(datasette: Any, request: Any, table: str | None) -> Markup:
    """The page's schema.org Dataset as a script element ("" if none); its URLs are
    absolute under the package's canonical address already (jsonld.package_jsonld)."""
    found = datasette.metadata().get("plugins", {}).get("coop100", {}).get("jsonld") or {}
    node = found.get("dataset") if table is None else found.get("tables", {}).get(table)
    if not node:
        return Markup("")
    return script(node)


def _base(datasette: Any, request: Any) -> str:
    return str(datasette.absolute_url(request, "/")).rstrip("/")


@hookimpl  # type: ignore[untyped-decorator]
def extra_template_vars(
    template: str,
    view_name: str,
    database: str | None,
    table: str | None,
    request: Any,
    datasette: Any,
) -> dict[str, Any]:
    """The landing page's Dataset (templates/index.html), each table page's (table.html)."""
    if request is None:
        return {}
    if template == "index.html":
        return {"jsonld": _jsonld(datasette, request, None)}
    if view_name == "table" and database == settings.DATABASE and table is not None:
        return {"coop100_jsonld": _jsonld(datasette, request, table)}
    return {}


async def changes_page(datasette: Any, request: Any) -> Response:
    """What changed in this version: the newest release's notes, from CHANGES.md."""
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    page = await datasette.render_template(
        ["coop100_changes.html"],
        {"metadata": datasette.metadata()},
        request=request,
        view_name="coop100_changes",
    )
    return Response.html(page, headers={"Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}"})


def _text(body: str, content_type: str) -> Response:
    return Response(
        body,
        content_type=content_type,
        headers={"Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}"},
    )


async def robots_txt(datasette: Any, request: Any) -> Response:
    return _text(
        ROBOTS.format(base=_base(datasette, request), mount=settings.DOWNLOADS_MOUNT),
        "text/plain; charset=utf-8",
    )


async def _tables(datasette: Any) -> list[tuple[str, str, int]]:
    """(table, primary key column, largest rowid) for every table the package publishes."""
    db = datasette.get_database(settings.DATABASE)
    published = datasette.metadata().get("plugins", {}).get("coop100", {}).get("jsonld", {})
    found = []
    for table in published.get("tables", {}):
        pks = await db.primary_keys(table)
        if len(pks) != 1:
            continue  # no single-column key: no stable row URL
        largest = (await db.execute(f"select max(rowid) from {escape_sqlite(table)}")).first()[0]
        found.append((table, pks[0], int(largest or 0)))
    return found


def _missing() -> Response:
    return Response.text("no such sitemap\n", status=404)


def _xml(tag: str, urls: list[str]) -> Response:
    entry = "sitemap" if tag == "sitemapindex" else "url"
    body = "".join(f"<{entry}><loc>{xml_escape(u)}</loc></{entry}>\n" for u in urls)
    return _text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{tag} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{body}</{tag}>\n',
        "application/xml; charset=utf-8",
    )


async def sitemap_index(datasette: Any, request: Any) -> Response:
    """A sitemap index: the pages, then each table's row pages in files of up to 50,000."""
    base = _base(datasette, request)
    parts = [f"{base}/sitemap-pages.xml"]
    for table, _, largest in await _tables(datasette):
        chunks = -(-largest // settings.SITEMAP_MAX_URLS)
        parts += [f"{base}/sitemap-{table}-{n}.xml" for n in range(1, chunks + 1)]
    return _xml("sitemapindex", parts)


async def sitemap_part(datasette: Any, request: Any) -> Response:
    base = _base(datasette, request)
    part = request.url_vars["part"]
    tables = {t: (pk, largest) for t, pk, largest in await _tables(datasette)}
    if part == "pages":
        urls = [f"{base}/", f"{base}{settings.CHANGES_URL}", f"{base}{CODEBOOK_URL}"]
        urls += [f"{base}/{settings.DATABASE}/{t}" for t in tables]
        return _xml("urlset", urls)
    table, _, number = part.rpartition("-")
    if table not in tables or not number.isdigit() or int(number) < 1:
        return _missing()
    pk, _largest = tables[table]
    first = (int(number) - 1) * settings.SITEMAP_MAX_URLS
    db = datasette.get_database(settings.DATABASE)
    # Rows were loaded in one go, so rowids run 1..n: a range is an index lookup.
    rows = await db.execute(
        f"select {escape_sqlite(pk)} from {escape_sqlite(table)}"
        " where rowid > ? and rowid <= ? order by rowid",
        [first, first + settings.SITEMAP_MAX_URLS],
    )
    urls = [
        f"{base}{datasette.urls.row(settings.DATABASE, table, tilde_encode(str(row[0])))}"
        for row in rows
    ]
    if not urls:
        return _missing()
    return _xml("urlset", urls)
