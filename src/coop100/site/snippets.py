"""Loading snippets on each table page: pandas, polars, DuckDB, R (arrow), frictionless.

Each reads the table at the URL that names this version of the package
(/data/v/<version>/…, coop100.site.downloads), whose bytes never change, so a
notebook that copies it reads the same rows next year. The URLs are worked out
when the site is built (`snippet_urls`) and made absolute for the address the
page was asked at. The code is selectable text in a <pre>; static/copy.js (served
from the site, as the Content-Security-Policy allows no inline script) adds a
button that copies it in one click.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import Response

from coop100 import settings as package_settings
from coop100.site import settings
from coop100.site.codebook import CODEBOOK_URL
from coop100.site.downloads import Downloads

JS_URL = "/-/coop100-copy.js"
_JS = Path(__file__).parent / "static" / "copy.js"

# (id, tool, language, code): {table} is the table's name (a Python, R and SQL
# identifier), {parquet} and {descriptor} absolute URLs.
SNIPPETS = (
    (
        "pandas",
        "pandas",
        "python",
        'import pandas as pd\n\n{table} = pd.read_parquet(\n    "{parquet}",\n'
        '    dtype_backend="pyarrow",\n)',
    ),
    (
        "polars",
        "polars",
        "python",
        'import polars as pl\n\n{table} = pl.read_parquet(\n    "{parquet}"\n)',
    ),
    (
        "duckdb",
        "DuckDB",
        "sql",
        "-- over HTTP with DuckDB's httpfs extension\n"
        "SELECT *\nFROM read_parquet(\n  '{parquet}'\n);",
    ),
    (
        "r",
        "R (arrow)",
        "r",
        'library(arrow)\n\n{table} <- read_parquet(\n  "{parquet}"\n)',
    ),
    (
        "frictionless",
        "frictionless",
        "python",
        "from frictionless import Package\n\n"
        'package = Package(\n    "{descriptor}"\n)\n'
        '{table} = package.get_resource("{table}").read_rows()',
    ),
)


def snippet_urls(descriptor: dict[str, Any], served: Downloads) -> dict[str, dict[str, str]]:
    """Each table's Parquet file and the package's descriptor at this version's URLs
    (site-relative)."""
    found = {}
    for resource in descriptor.get("resources", []):
        if resource.get("format") != "parquet" or "schema" not in resource:
            continue
        table = resource["name"].removesuffix("-parquet")
        found[table] = {
            "parquet": served.versioned_url(resource["path"]),
            "descriptor": served.versioned_url(package_settings.DESCRIPTOR),
        }
    return found


def snippets(table: str, urls: dict[str, str], base: str) -> list[dict[str, str]]:
    """The table's snippets, their URLs absolute against base (no trailing /)."""
    values = {"table": table, **{k: base + v for k, v in urls.items()}}
    return [
        {"id": ident, "tool": tool, "language": language, "code": code.format(**values)}
        for ident, tool, language, code in SNIPPETS
    ]


@hookimpl(specname="extra_template_vars")  # type: ignore[untyped-decorator]
def snippet_template_vars(
    view_name: str, database: str | None, table: str | None, request: Any, datasette: Any
) -> dict[str, Any]:
    """Give a published table's page its snippets (templates/_coop100_snippets.html)."""
    if view_name != "table" or database != settings.DATABASE or request is None:
        return {}
    found = datasette.metadata().get("plugins", {}).get("coop100", {}).get("snippets", {})
    if table is None or table not in found:
        return {}
    base = str(datasette.absolute_url(request, "/")).rstrip("/")
    return {
        "coop100_snippets": snippets(table, found[table], base),
        "coop100_codebook_url": CODEBOOK_URL,
    }


@hookimpl(specname="extra_js_urls")  # type: ignore[untyped-decorator]
def snippet_js_urls(view_name: str, database: str | None) -> list[str]:
    if view_name == "table" and database == settings.DATABASE:
        return [JS_URL]
    return []


@hookimpl(specname="register_routes")  # type: ignore[untyped-decorator]
def snippet_routes() -> list[tuple[str, Any]]:
    return [(rf"^{JS_URL}$", copy_js)]


async def copy_js() -> Response:
    return Response(
        _JS.read_text(encoding="utf-8"),
        content_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": f"max-age={settings.CACHE_TTL_SECONDS}"},
    )
