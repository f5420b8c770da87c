"""Put together everything Datasette serves: database, zip, downloads, metadata, counts."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from coop100.load.database import read_descriptor, write_database
from coop100.settings import CATALOG_JSONLD, CATALOG_TURTLE, DB_NAME, DESCRIPTOR, FEED_FILE
from coop100.site import settings
from coop100.site.codebook import codebook_metadata
from coop100.site.downloads import Downloads, write_downloads
from coop100.site.jsonld import package_jsonld
from coop100.site.metadata import site_metadata
from coop100.site.snippets import snippet_urls
from coop100.write.archive import ZIP_NAME, package_files, write_zip

TEMPLATES_DIR = Path(__file__).parent / "templates"
_FORMATS = {"csv": "CSV", "parquet": "Parquet"}
# Served at /<name> (media types in settings.MEDIA_TYPES); .zenodo.json is Zenodo's alone.
SITE_ROOT_FILES = (CATALOG_TURTLE, CATALOG_JSONLD, FEED_FILE)


@dataclass(frozen=True)
class Site:
    """The files one Datasette instance serves."""

    db_path: Path
    metadata_path: Path
    inspect_path: Path
    data_dir: Path
    docs_dir: Path | None = None  # the built documentation, if `make docs` built it


def build_site(root: Path, rebuild: bool = False) -> Site:
    """Write build/coop100.db, build/coop100.zip and build/site/ from root/datapackage.json.

    The database and zip are rewritten when missing, older than the package, or
    when rebuild is set; the site folder is always written afresh.
    """
    package_path = root / DESCRIPTOR
    sources = [root / name for name in package_files(package_path)]
    newest = max(path.stat().st_mtime for path in sources)
    db_path = root / "build" / DB_NAME
    zip_path = root / "build" / ZIP_NAME
    if rebuild or _stale(db_path, newest):
        write_database(root)
    if rebuild or _stale(zip_path, newest):
        write_zip(package_path, zip_path)

    site_dir = root / settings.SITE_DIR
    data_dir = site_dir / settings.DOWNLOADS_MOUNT
    served = write_downloads(data_dir, served_files(root))

    inspected = inspect_data(db_path)
    inspect_path = site_dir / "inspect.json"
    inspect_path.write_text(json.dumps(inspected, indent=2) + "\n")
    counts = {name: t["count"] for name, t in inspected[db_path.stem]["tables"].items()}
    links = downloads(root, served)
    metadata = site_metadata(package_path, links, counts)
    descriptor = read_descriptor(package_path)
    metadata["plugins"]["coop100"]["jsonld"] = package_jsonld(descriptor, links, db_path)
    metadata["plugins"]["coop100"]["codebook"] = codebook_metadata(package_path, descriptor)
    metadata["plugins"]["coop100"]["snippets"] = snippet_urls(descriptor, served)
    docs_dir = site_dir / settings.DOCS_MOUNT
    if (docs_dir / "index.html").is_file():
        metadata["plugins"]["coop100"]["docs_url"] = f"/{settings.DOCS_MOUNT}/"
    metadata_path = site_dir / "metadata.json"
    metadata_path.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    docs = docs_dir if "docs_url" in metadata["plugins"]["coop100"] else None
    return Site(db_path, metadata_path, inspect_path, data_dir, docs)


def served_files(root: Path) -> dict[str, tuple[Path, str, str]]:
    """Return what the site serves: path under /data/ -> (file, stable URL, media type).

    The package's files, its zip and the SQLite database (whose stable URL is
    Datasette's own). A data file's media type is the one its resource declares.
    """
    mount = f"/{settings.DOWNLOADS_MOUNT}"
    descriptor = read_descriptor(root / DESCRIPTOR)
    declared = {
        r["path"]: r["mediatype"] + (f"; charset={r['encoding']}" if "encoding" in r else "")
        for r in descriptor["resources"]
        if "mediatype" in r
    }
    files = {
        name: (root / name, f"{mount}/{name}", declared.get(name, ""))
        for name in package_files(root / DESCRIPTOR)
    }
    files[ZIP_NAME] = (root / "build" / ZIP_NAME, f"{mount}/{ZIP_NAME}", "")
    files[DB_NAME] = (root / "build" / DB_NAME, f"/{DB_NAME}", "")
    # The DCAT-AP catalogue and the releases feed, at the top of the site, when the
    # build wrote them (a package unzipped elsewhere has only its own files).
    for name in SITE_ROOT_FILES:
        if (root / name).is_file():
            files[name] = (root / name, f"/{name}", "")
    return {
        name: (path, url, media_type or settings.MEDIA_TYPES[Path(name).suffix])
        for name, (path, url, media_type) in files.items()
    }


def downloads(root: Path, served: Downloads | None = None) -> dict[str, Any]:
    """Return the landing page's download links: the package files, per table, and the rest.

    `package` holds the descriptor, the zip and the SQLite file, and the descriptor
    at the URL that names this version (when served is given); `tables` one entry per
    table with its CSV and Parquet files, in the package's order.
    """
    mount = f"/{settings.DOWNLOADS_MOUNT}"
    descriptor = read_descriptor(root / DESCRIPTOR)
    # Each link names the media type the file is served with (for the JSON-LD).
    types = {url: media_type for _, url, media_type in served_files(root).values()}

    def _link(title: str, url: str, path: Path, stable_url: str | None = None) -> dict[str, Any]:
        size = path.stat().st_size if path.is_file() else None
        return {"title": title, "url": url, "bytes": size, "media_type": types[stable_url or url]}

    package = [
        _link("Data Package descriptor", f"{mount}/{DESCRIPTOR}", root / DESCRIPTOR),
        _link("The whole package (zip)", f"{mount}/{ZIP_NAME}", root / "build" / ZIP_NAME),
        _link("SQLite database", f"/{DB_NAME}", root / "build" / DB_NAME),
    ]
    if served is not None:
        package.append(
            _link(
                f"This version's descriptor, at URLs that never change ({served.version})",
                served.versioned_url(DESCRIPTOR),
                root / DESCRIPTOR,
                stable_url=f"{mount}/{DESCRIPTOR}",
            )
        )
    tables: dict[str, dict[str, Any]] = {}
    for resource in descriptor["resources"]:
        if "schema" not in resource:  # a file, not a table: release notes, other formats
            title = f"{resource.get('title', resource['name'])} ({resource['path']})"
            package.append(_link(title, f"{mount}/{resource['path']}", root / resource["path"]))
            continue
        # Each table is published twice, as <table> (CSV) and <table>-parquet.
        name = resource["name"].removesuffix(f"-{resource['format']}")
        entry = tables.setdefault(
            name, {"name": name, "title": resource.get("title", name), "files": []}
        )
        url = f"{mount}/{resource['path']}"
        entry["files"].append(
            {
                "format": _FORMATS.get(resource["format"], resource["format"]),
                "url": url,
                "bytes": resource.get("bytes"),
                "media_type": types[url],
            }
        )
    return {"package": package, "tables": list(tables.values())}


def inspect_data(db_path: Path) -> dict[str, Any]:
    """Return what `datasette inspect` would write: hash, size and row counts."""
    db = sqlite_utils.Database(f"file:{db_path}?immutable=1", use_counts_table=False)
    try:
        counts = {name: {"count": db[name].count} for name in db.table_names()}
    finally:
        db.close()
    return {
        db_path.stem: {
            "hash": hashlib.sha256(db_path.read_bytes()).hexdigest(),
            "size": db_path.stat().st_size,
            "file": str(db_path),
            "tables": counts,
        }
    }


def datasette_command(site: Site, host: str, port: int) -> list[str]:
    """Return the `datasette serve` command line that serves site read-only."""
    command = [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        "--immutable",
        str(site.db_path),
        "--inspect-file",
        str(site.inspect_path),
        "--metadata",
        str(site.metadata_path),
        "--template-dir",
        str(TEMPLATES_DIR),
        "--static",
        f"{settings.DOWNLOADS_MOUNT}:{site.data_dir}",
        *(["--static", f"{settings.DOCS_MOUNT}:{site.docs_dir}"] if site.docs_dir else []),
        "--host",
        host,
        "--port",
        str(port),
    ]
    for name, value in settings.DATASETTE_SETTINGS.items():
        command += ["--setting", name, _setting_text(value)]
    return command


def datasette_app(site: Site) -> Any:
    """Return an in-process Datasette configured exactly as `datasette_command` serves it."""
    from datasette.app import Datasette  # lazy: building the site does not need Datasette

    return Datasette(
        immutables=[str(site.db_path)],
        inspect_data=json.loads(site.inspect_path.read_text()),
        metadata=json.loads(site.metadata_path.read_text()),
        template_dir=str(TEMPLATES_DIR),
        static_mounts=[(settings.DOWNLOADS_MOUNT, str(site.data_dir))]
        + ([(settings.DOCS_MOUNT, str(site.docs_dir))] if site.docs_dir else []),
        settings=dict(settings.DATASETTE_SETTINGS),
    )


def _stale(path: Path, newest_source: float) -> bool:
    return not path.exists() or path.stat().st_mtime < newest_source


def _setting_text(value: int | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
