"""Write the published package: CSV, Parquet, Table Schemas and datapackage.json."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import settings
from .models import MODEL_BY_TABLE, MODELS, Source
from .tables import table_schema

CSV_OPTIONS = pacsv.WriteOptions(
    include_header=True, delimiter=",", eol="\r\n", quoting_style="needed", quoting_header="none"
)


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def file_digest(path: Path) -> tuple[int, str]:
    """Size in bytes and sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return path.stat().st_size, digest.hexdigest()


def write_csv(table: pa.Table, path: Path) -> None:
    # Times are whole seconds; written as HH:MM:SS rather than Arrow's HH:MM:SS.000.
    schema = pa.schema(
        [f.with_type(pa.time32("s")) if pa.types.is_time(f.type) else f for f in table.schema]
    )
    pacsv.write_csv(table.cast(schema), path, write_options=CSV_OPTIONS)


def write_parquet(table: pa.Table, path: Path, schema: dict[str, Any]) -> None:
    metadata = {
        "table_schema": json.dumps(schema, ensure_ascii=False),
        "package_name": settings.PACKAGE_NAME,
        "package_version": settings.PACKAGE_VERSION,
        "license": settings.DATA_LICENSE["name"],
    }
    pq.write_table(
        table.replace_schema_metadata(metadata),
        path,
        compression="zstd",
        compression_level=9,
    )


def descriptor(root: Path, sources: list[Source]) -> dict[str, Any]:
    """The Data Package (v2) descriptor for the files already written under root."""
    resources = []
    for model in MODELS:
        for fmt, directory, suffix, mediatype in (
            ("csv", settings.CSV_DIR, "", "text/csv"),
            ("parquet", settings.PARQUET_DIR, "-parquet", "application/vnd.apache.parquet"),
        ):
            path = f"{directory}/{model.table}.{fmt}"
            size, sha256 = file_digest(root / path)
            resource: dict[str, Any] = {
                "name": f"{model.table}{suffix}",
                "type": "table",
                "title": model.table_title + (" (Parquet)" if suffix else ""),
                "description": model.table_description,
                "path": path,
                "format": fmt,
                "mediatype": mediatype,
            }
            if fmt == "csv":
                resource["encoding"] = "utf-8"
            if fmt == "csv":
                resource |= {"bytes": size, "hash": f"sha256:{sha256}"}
            else:
                # frictionless opens Parquet through pyarrow and never counts its
                # bytes, so the standard properties would always fail its check;
                # `coop100 validate` checks these instead.
                resource |= {"coop100:bytes": size, "coop100:hash": f"sha256:{sha256}"}
            resource["schema"] = f"{settings.SCHEMAS_DIR}/{model.table}.json"
            resources.append(resource)
    return {
        "$schema": settings.DATA_PACKAGE_PROFILE,
        "name": settings.PACKAGE_NAME,
        "title": settings.PACKAGE_TITLE,
        "description": settings.PACKAGE_DESCRIPTION,
        "version": settings.PACKAGE_VERSION,
        "homepage": settings.PACKAGE_HOMEPAGE,
        "keywords": settings.PACKAGE_KEYWORDS,
        "licenses": [settings.DATA_LICENSE, settings.CODE_LICENSE],
        "contributors": settings.CONTRIBUTORS,
        "sources": [
            {"title": f"{s.label}: {s.title}", **({"path": s.url} if s.url else {})}
            for s in sources
        ],
        "resources": resources,
    }


def write_package_files(tables: dict[str, pa.Table], root: Path, sources: list[Source]) -> None:
    """Write every published file of the package under root (which must exist)."""
    for sub in (settings.CSV_DIR, settings.PARQUET_DIR, settings.SCHEMAS_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        schema = table_schema(MODEL_BY_TABLE[name])
        (root / settings.SCHEMAS_DIR / f"{name}.json").write_bytes(_json_bytes(schema))
        write_csv(table, root / settings.CSV_DIR / f"{name}.csv")
        write_parquet(table, root / settings.PARQUET_DIR / f"{name}.parquet", schema)
    (root / settings.DESCRIPTOR).write_bytes(_json_bytes(descriptor(root, sources)))


def published_files(root: Path) -> list[str]:
    """Paths (relative to root) of every file a build publishes."""
    paths = [settings.DESCRIPTOR]
    for model in MODELS:
        paths += [
            f"{settings.SCHEMAS_DIR}/{model.table}.json",
            f"{settings.CSV_DIR}/{model.table}.csv",
            f"{settings.PARQUET_DIR}/{model.table}.parquet",
        ]
    return paths


def build_package(
    records_dir: Path,
    root: Path,
    check: Callable[[Path], list[str]] | None = None,
) -> list[str]:
    """Validate the records and publish the package under root.

    Everything is written to a staging folder beside build/ first and checked
    there; only then are the files moved into place, so a failed build leaves
    the published files as they were.

    Returns:
        The published paths, relative to root.
    Raises:
        RecordsError: the records are invalid (nothing is written).
        PackageError: the staged package failed `check` (nothing is published).
    """
    from .bulk import read_tables  # bulk imports records; keep package importable alone

    read = read_tables(records_dir)
    tables, sources = read.tables, read.sources
    (root / "build").mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root / "build"))
    try:
        write_package_files(tables, staging, sources)
        del tables, read  # the check reads the files back: hold one copy, not two
        if check is not None:
            problems = check(staging)
            if problems:
                raise PackageError(problems)
        paths = published_files(staging)
        for rel in paths:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
        return paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class PackageError(Exception):
    """The built package failed validation; `problems` lists what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
