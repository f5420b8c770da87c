"""Datasette metadata, generated from the Table Schemas and datapackage.json.

Table and column descriptions are read from the published package, where the
models' field descriptions landed, so the site never holds a second copy.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from coop100.load.database import csv_resources, read_descriptor
from coop100.serving import FACETS, FTS_COLUMNS, SORT, VIEWS, label_column
from coop100.settings import CHANGES_RESOURCE, CITATION_RESOURCE
from coop100.site import settings
from coop100.site.queries import CANNED_QUERIES
from coop100.versions.release import latest_notes

_LARGE_VIEW = (
    " At this size the view has no default order or facets,"
    " which would join every row: facet the {} table instead, or pick a facet here."
)

_FACET_TABLES = (
    "Facet counts stored with the database so that large table pages need not count"
    " them on every visit; derived from the other tables, not part of the package."
)


def site_metadata(
    package_path: Path,
    downloads: dict[str, Any] | None = None,
    row_counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Return Datasette metadata for the package at package_path.

    Args:
        package_path: the published datapackage.json.
        downloads: links for the landing page, as `coop100.site.build.downloads` gives them.
        row_counts: rows per table; a view over more than settings.VIEW_FACET_MAX_ROWS
            rows gets no default sort or facets (each would join and count them all).
    """
    descriptor = read_descriptor(package_path)
    tables: dict[str, dict[str, Any]] = {}
    columns_by_table: dict[str, dict[str, str]] = {}
    booleans: dict[str, list[str]] = {}
    for resource in csv_resources(descriptor):
        name = resource["name"]
        fields = resource["schema"]["fields"]
        columns = {f["name"]: f.get("description", "") for f in fields}
        columns_by_table[name] = columns
        tables[name] = _table(name, resource, columns)
        booleans[name] = [f["name"] for f in fields if f["type"] == "boolean"]
    for view in VIEWS:
        booleans[view.name] = [
            column
            for column, source in view.columns.items()
            if isinstance(source, tuple) and source[1] in booleans.get(source[0], [])
        ]
        large = (row_counts or {}).get(view.base, 0) > settings.VIEW_FACET_MAX_ROWS
        tables[view.name] = {
            "title": view.title,
            "description": view.description + (_LARGE_VIEW.format(view.base) if large else ""),
            "columns": {
                column: described
                if isinstance(described, str)
                else columns_by_table.get(described[0], {}).get(described[1], "")
                for column, described in view.columns.items()
            },
            **_options(view.name, list(view.columns), sorted_and_faceted=not large),
        }
    for name in (settings.FACET_GROUPS_TABLE, settings.FACET_COUNTS_TABLE):
        # Bookkeeping of the site (coop100.load.facets), not data: reachable by URL, not listed.
        tables[name] = {"hidden": True, "description": _FACET_TABLES}
    for entry in (downloads or {}).get("tables", []):
        if entry["name"] in tables:
            tables[entry["name"]]["description_html"] = _with_files(
                tables[entry["name"]]["description"], entry["files"]
            )
    licence = (descriptor.get("licenses") or [{}])[0]
    source = (descriptor.get("sources") or [{}])[0]
    metadata: dict[str, Any] = {
        "title": descriptor.get("title", descriptor.get("name", "coop100")),
        "description": descriptor.get("description", ""),
        "license": licence.get("title") or licence.get("name", ""),
        "license_url": licence.get("path", ""),
        "source": source.get("title", ""),
        "source_url": source.get("path", ""),
        "about": "coop100: the data package and the code that builds it",
        "about_url": descriptor.get("coop100:repository", ""),
        "databases": {
            settings.DATABASE: {
                "title": descriptor.get("title", settings.DATABASE),
                "description": descriptor.get("description", ""),
                "tables": tables,
                "queries": CANNED_QUERIES,
            }
        },
        "plugins": {
            "coop100": {
                "downloads": downloads or {"package": [], "tables": []},
                "release": release_metadata(package_path, descriptor),
                # The canonical address every absolute URL of the site's metadata uses.
                "site_url": str(descriptor.get("homepage", "")).rstrip("/"),
                # Stored as 1/0; the site also takes true/false for them (site.arguments).
                "boolean_columns": {name: cols for name, cols in booleans.items() if cols},
            }
        },
    }
    return {key: value for key, value in metadata.items() if value != ""}


def _open_table(renderer: Any, tokens: list[Any], index: int, *_: Any) -> str:
    """A wide table scrolls in its own box, which a keyboard can reach and scroll."""
    number = sum(token.type == "table_open" for token in tokens[:index]) + 1
    label = f'aria-label="Table {number}"'
    return f'<div class="table-scroll" tabindex="0" role="region" {label}><table>\n'


def release_metadata(package_path: Path, descriptor: dict[str, Any]) -> dict[str, Any]:
    """The version, its date and its release notes (as HTML) for the site's pages."""
    by_name = {r.get("name"): r for r in descriptor.get("resources", [])}
    notes, citation = by_name.get(CHANGES_RESOURCE), by_name.get(CITATION_RESOURCE)
    creators = [
        c["title"] for c in descriptor.get("contributors", []) if "creator" in c.get("roles", [])
    ]
    version, released = descriptor.get("version", ""), descriptor.get("coop100:released", "")
    # APA cites a data set by its DOI when it has one, else by where it is published.
    address = descriptor.get("id") or str(descriptor.get("homepage", "")).rstrip("/") + "/"
    heading, body = "", ""
    if notes is not None:
        text = (package_path.parent / notes["path"]).read_text(encoding="utf-8")
        heading, body = latest_notes(text)
    # Raw HTML in the notes is shown as text: the notes quote the records' values.
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    renderer.add_render_rule("table_open", _open_table)
    renderer.add_render_rule("table_close", lambda *_: "</table>\n</div>\n")
    return {
        "version": version,
        "released": released,
        # APA's pattern for a data set.
        "citation": f"{', '.join(creators)} ({released[:4]}). {descriptor.get('title', '')}"
        f" (Version {version}) [Data set]. {address}",
        # The DOI, for the landing page's Link: <…>; rel="cite-as" (RFC 8574).
        "cite_as": descriptor.get("id", ""),
        "credit": descriptor.get("coop100:credit", ""),
        "citation_url": f"/{settings.DOWNLOADS_MOUNT}/{citation['path']}" if citation else "",
        "heading": heading,
        "notes_html": renderer.render(body),
        "notes_url": f"/{settings.DOWNLOADS_MOUNT}/{notes['path']}" if notes else "",
        "page_url": settings.CHANGES_URL,
    }


def _table(name: str, resource: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    table: dict[str, Any] = {
        "title": resource.get("title", name),
        "description": resource.get("description", ""),
        "columns": columns,
        **_options(name, list(columns)),
    }
    if name in FTS_COLUMNS:
        table["fts_table"] = f"{name}_fts"
        table["fts_pk"] = "rowid"
    return table


def _with_files(description: str, files: list[dict[str, Any]]) -> str:
    """The table's description, then links to its published files.

    Datasette's own json/CSV links export the page from SQLite; these are the
    package's files, with their checksums in datapackage.json.
    """
    links = " · ".join(
        f'<a href="{escape(f["url"])}" download>{escape(f["format"])}</a>' for f in files
    )
    return (
        f"<p>{escape(description)}</p>"
        f'<p class="coop100-published">Download the published table: {links}</p>'
    )


def _options(name: str, columns: list[str], sorted_and_faceted: bool = True) -> dict[str, Any]:
    options: dict[str, Any] = {}
    label = label_column(columns)
    if label:
        options["label_column"] = label
    if sorted_and_faceted and name in SORT:
        options["sort"] = SORT[name]
    if sorted_and_faceted and name in FACETS:
        options["facets"] = FACETS[name]
    return options
