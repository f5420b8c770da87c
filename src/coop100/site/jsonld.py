"""schema.org JSON-LD for search engines: the package and each table as a `Dataset`.

Written when the site is built, from the published descriptor (name, description,
version, licence, creator, keywords, files) and the database it loaded (the events,
their organisers and speakers, the dates they cover), with every URL absolute
under the package's canonical address (the descriptor's homepage). The properties
are those Google's Dataset guidelines require (name, description) or recommend.
Left out, as the package has none to give: funder, includedInDataCatalog (no
catalogue lists it yet), sameAs and spatialCoverage (the event was online).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from markupsafe import Markup

from coop100 import settings as package_settings
from coop100.site import settings

SCHEMA_ORG = "https://schema.org/"
_MODES = {
    "online": "https://schema.org/OnlineEventAttendanceMode",
    "in-person": "https://schema.org/OfflineEventAttendanceMode",
    "hybrid": "https://schema.org/MixedEventAttendanceMode",
}
_TYPES = {"integer": "integer", "boolean": "boolean", "date": "date", "time": "time"}
# Measurement technique of every row: how the package was made.
_TECHNIQUE = (
    "Curated by hand from published web pages (news posts, articles, interviews):"
    " each row cites its source, and rival claims are kept with one marked preferred."
)


def package_jsonld(
    descriptor: dict[str, Any], downloads: dict[str, Any], db_path: Path
) -> dict[str, Any]:
    """The landing page's Dataset and one Dataset per table, with absolute URLs.

    Args:
        descriptor: datapackage.json with its schemas read in (database.read_descriptor).
        downloads: the site's download links (coop100.site.build.downloads).
        db_path: the database the site serves.
    """
    common = _common(descriptor, db_path)
    tables: dict[str, Any] = {}
    files_by_table = {t["name"]: t["files"] for t in downloads.get("tables", [])}
    for resource in descriptor.get("resources", []):
        if resource.get("format") != "csv" or "schema" not in resource:
            continue
        name = resource["name"]
        tables[name] = {
            "@context": SCHEMA_ORG,
            "@type": "Dataset",
            "@id": f"/{settings.DATABASE}/{name}#dataset",
            "name": f"{descriptor.get('title', '')}: {resource.get('title', name)}",
            # Google wants 50 characters or more; some tables say what they are in fewer.
            "description": f"{resource.get('description', '')} One of the tables of"
            f" {descriptor.get('title', '')}, published as CSV and Parquet.",
            "url": f"/{settings.DATABASE}/{name}",
            "isPartOf": {"@id": "/#dataset"},
            **common,
            "distribution": [_download(f) for f in files_by_table.get(name, [])],
            "variableMeasured": _variables(name, resource["schema"], prefix=False),
        }
    distribution = [
        _download(f, title=True)
        for f in downloads.get("package", [])
        # The release notes and the citation describe the data; they hold none of it.
        if not f["url"].endswith(tuple(f"/{path}" for path in package_settings.ROOT_DOCUMENTS))
        # The same descriptor at its versioned URL is one download, not two.
        and not f["url"].startswith(f"/{settings.DOWNLOADS_MOUNT}/v/")
    ]
    for entry in downloads.get("tables", []):
        distribution += [
            _download(f, name=f"{entry['name']} ({f['format']})") for f in entry["files"]
        ]
    variables = []
    for resource in descriptor.get("resources", []):
        if resource.get("format") == "csv" and "schema" in resource:
            variables += _variables(resource["name"], resource["schema"], prefix=True)
    dataset = {
        "@context": SCHEMA_ORG,
        "@type": "Dataset",
        "@id": "/#dataset",
        "name": descriptor.get("title", descriptor.get("name", "")),
        "alternateName": descriptor.get("name", ""),
        # The DOI (the descriptor's id) once there is one, else the package's name.
        "identifier": descriptor.get("id") or descriptor.get("name", ""),
        "description": descriptor.get("description", ""),
        "url": "/",
        **common,
        "isBasedOn": [s["path"] for s in descriptor.get("sources", []) if s.get("path")],
        "hasPart": [{"@id": t["@id"], "name": t["name"]} for t in tables.values()],
        "distribution": distribution,
        "variableMeasured": variables,
    }
    site = str(descriptor.get("homepage", "")).rstrip("/")
    return {"dataset": absolute(dataset, site), "tables": absolute(tables, site)}


def _common(descriptor: dict[str, Any], db_path: Path) -> dict[str, Any]:
    """What the package and each of its tables share: version, licence, creator, coverage."""
    licence = next(
        (lic for lic in descriptor.get("licenses", []) if "CC" in str(lic.get("name", ""))),
        (descriptor.get("licenses") or [{}])[0],
    )
    creators = [
        {"@type": "Organization", "name": c["title"]}
        for c in descriptor.get("contributors", [])
        if "creator" in c.get("roles", [])
    ]
    events, coverage = _events(db_path)
    common: dict[str, Any] = {
        "version": descriptor.get("version", ""),
        "datePublished": descriptor.get("coop100:released", ""),
        "license": licence.get("path", ""),
        "isAccessibleForFree": True,
        "creator": creators,
        "keywords": descriptor.get("keywords", []),
        "inLanguage": "en",
        "measurementTechnique": _TECHNIQUE,
        "temporalCoverage": coverage,
        "about": events,
    }
    return {key: value for key, value in common.items() if value not in ("", [], None)}


def _variables(table: str, schema: dict[str, Any], prefix: bool) -> list[dict[str, Any]]:
    return [
        {
            "@type": "PropertyValue",
            "name": f"{table}.{f['name']}" if prefix else f["name"],
            "description": f.get("description", ""),
            "unitText": _TYPES.get(f.get("type", "string"), "text"),
        }
        for f in schema.get("fields", [])
    ]


def _download(link: dict[str, Any], title: bool = False, name: str | None = None) -> dict[str, Any]:
    url = str(link["url"])
    suffix = url.rsplit(".", 1)[-1]
    # The type the file is served with (coop100.site.build.downloads), without parameters.
    encoding = str(link.get("media_type") or "application/octet-stream").split(";")[0]
    entry: dict[str, Any] = {
        "@type": "DataDownload",
        "name": name or (link["title"] if title else link.get("format", suffix)),
        "contentUrl": url,
        "encodingFormat": encoding,
    }
    if link.get("bytes") is not None:
        entry["contentSize"] = f"{link['bytes']} B"
    return entry


def _events(db_path: Path) -> tuple[list[dict[str, Any]], str]:
    """The events the data is about (with organiser and speakers), and the dates they span.

    Read from the database so a million-row package costs a few indexed lookups:
    at most settings.JSONLD_MAX_EVENTS events, settings.JSONLD_MAX_PERFORMERS each.
    """
    db = sqlite3.connect(f"file:{db_path}?immutable=1", uri=True)
    db.row_factory = sqlite3.Row
    try:
        span = db.execute(
            "select min(start_date), max(coalesce(end_date, start_date)) from events"
        ).fetchone()
        rows = db.execute(
            "select e.*, o.name as organiser from events e left join organisations o"
            " on o.organisation_id = e.organiser_organisation_id order by e.rowid limit ?",
            [settings.JSONLD_MAX_EVENTS],
        ).fetchall()
        events = []
        for row in rows:
            performers = db.execute(
                "select p.name from participations pa join people p using (person_id)"
                " where pa.event_id = ?"
                " order by pa.speaking_order is null, pa.speaking_order, pa.rowid limit ?",
                [row["event_id"], settings.JSONLD_MAX_PERFORMERS],
            ).fetchall()
            event: dict[str, Any] = {
                "@type": "Event",
                # The event's page, the @id its own JSON-LD gives it (site.entities).
                "@id": f"/{settings.DATABASE}/events/{row['event_id']}",
                **event_facts(row),
                "organizer": {"@type": "Organization", "name": row["organiser"]}
                if row["organiser"]
                else None,
                "performer": [{"@type": "Person", "name": p["name"]} for p in performers],
                "superEvent": {"@id": f"/{settings.DATABASE}/events/{row['parent_event_id']}"}
                if row["parent_event_id"]
                else None,
                "url": f"/{settings.DATABASE}/events/{row['event_id']}",
            }
            events.append({k: v for k, v in event.items() if v not in (None, "", [])})
    finally:
        db.close()
    start, end = span if span else (None, None)
    coverage = "" if not start else start if start == end else f"{start}/{end}"
    return events, coverage


def event_facts(row: Any) -> dict[str, Any]:
    """What an `events` row says of the event in schema.org's words: the landing page's
    events and each event's own page (coop100.site.entities) both say it so."""
    return {
        "name": row["name"],
        "description": row["description"],
        "startDate": row["start_date"],
        "endDate": row["end_date"],
        "eventAttendanceMode": _MODES.get(row["mode"] or ""),
        "location": {"@type": "VirtualLocation", "name": row["platform"]}
        if row["platform"]
        else None,
    }


def absolute(node: Any, base: str) -> Any:
    """The JSON-LD with every site-relative URL made absolute against base (no trailing /)."""
    if isinstance(node, dict):
        return {
            k: (
                base + v
                if k in ("@id", "url", "contentUrl") and isinstance(v, str) and v.startswith("/")
                else absolute(v, base)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [absolute(v, base) for v in node]
    return node


def script(node: dict[str, Any]) -> Markup:
    """A <script type="application/ld+json"> element; '<' is escaped so text cannot close it."""
    text = json.dumps(node, ensure_ascii=False, indent=1).replace("<", "\\u003c")
    return Markup(f'<script type="application/ld+json">\n{text}\n</script>')
