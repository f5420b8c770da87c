"""Write the published package: CSV, Parquet, Table Schemas and datapackage.json."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import settings
from .models import MODEL_BY_TABLE, MODELS, Source
from .problems import Problem
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
        checkpoint("writing")
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
    check: Callable[[Path], list[Problem]] | None = None,
    timer: Callable[[str], AbstractContextManager[object]] = lambda name: nullcontext(),
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

    with timer("read and check records"):
        read = read_tables(records_dir)
    tables, sources = read.tables, read.sources
    (root / "build").mkdir(parents=True, exist_ok=True)
    with build_lock(root):
        prepare_build_dir(root)
        staging = Path(tempfile.mkdtemp(prefix=settings.STAGING_PREFIX, dir=root / "build"))
        try:
            with timer("write CSV, Parquet, schemas, datapackage.json"):
                write_package_files(tables, staging, sources)
            del tables, read  # the check reads the files back: hold one copy, not two
            checkpoint("staged")
            if check is not None:
                with timer("check the staged package"):
                    problems = check(staging)
                if problems:
                    raise PackageError(problems)
            checkpoint("checked")
            paths = published_files(staging)
            with timer("publish"):
                publish(staging, root, paths)
            return paths
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# -- publishing: all files or none ----------------------------------------------------
#
# The published files live in three folders, so no single rename can swap them
# all. Instead a journal is the commit point: every file is staged and fsynced
# under build/.tmp-*, then build/.coop100-publish.json is written atomically,
# naming the staging folder and the files. Before the journal exists a kill
# leaves the published files untouched (the staging folder is swept by the next
# build). Once it exists the new package is decided: the swap renames each file
# into place, and if it is killed half-way the next `coop100 build` or
# `coop100 validate` finishes it from the journal (roll forward) before doing
# anything else. Renames are idempotent, so a kill during the roll forward is
# finished by the one after.


class BuildDirError(Exception):
    """build/ is not in a state a build may touch; `problems` says why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def checkpoint(name: str) -> None:
    """Stop for good at this named point when the kill tests ask for it (settings.PAUSE_ENV)."""
    if os.environ.get(settings.PAUSE_ENV) == name:
        sys.stderr.write(f"coop100: paused at {name}\n")
        sys.stderr.flush()
        while True:
            time.sleep(3600)


@contextlib.contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """Hold build/.coop100.lock so two builds never stage, sweep or swap at once."""
    path = root / settings.BUILD_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildDirError(
                [f"{settings.BUILD_LOCK}: another coop100 build is running; wait for it"]
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _owned(rel: str) -> bool:
    parts = rel.split("/")
    for pattern in settings.BUILD_OWNED:
        pat = pattern.split("/")
        if pat[-1] == "**":
            pat = pat[:-1]
            if len(parts) > len(pat) and all(map(fnmatchcase, parts, pat)):
                return True
        elif len(parts) == len(pat) and all(map(fnmatchcase, parts, pat)):
            return True
    return False


def foreign_files(root: Path) -> list[str]:
    """Files under root/build/ that no build writes (relative to root, sorted)."""
    ours = set(published_files(root))
    found = []
    for path in sorted((root / "build").rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() or rel in ours or _owned(rel):
            continue
        found.append(rel)
    return found


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap(root: Path, staging: Path, paths: list[str]) -> None:
    """Rename every staged file that is still staged into place; safe to repeat."""
    for number, rel in enumerate(paths, start=1):
        source = staging / rel
        if source.exists():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        if number == len(paths) // 2:
            checkpoint("swapping")
    for folder in sorted({(root / rel).parent for rel in paths}):
        _fsync(folder)


def publish(staging: Path, root: Path, paths: list[str]) -> None:
    """Move the staged files into place as one step (see the comment above)."""
    for rel in paths:
        _fsync(staging / rel)
    journal = root / settings.PUBLISH_JOURNAL
    pending = journal.with_name(journal.name + ".tmp")
    pending.write_bytes(_json_bytes({"staging": staging.name, "files": paths}))
    _fsync(pending)
    os.replace(pending, journal)
    _fsync(journal.parent)
    checkpoint("committed")
    _swap(root, staging, paths)
    checkpoint("swapped")
    journal.unlink()
    _fsync(journal.parent)
    checkpoint("published")


def finish_interrupted_publish(root: Path) -> list[str]:
    """Roll forward a publish that was killed after its commit point.

    Returns:
        The files the journal names, or [] when no publish was interrupted.
    """
    journal = root / settings.PUBLISH_JOURNAL
    if not journal.exists():
        return []
    try:
        entry = json.loads(journal.read_text(encoding="utf-8"))
        staging_name, paths = entry["staging"], entry["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildDirError(
            [
                f"{settings.PUBLISH_JOURNAL}: cannot be read ({exc}); restore the published "
                "files with git, delete it and run `coop100 build`"
            ]
        ) from None
    known = set(published_files(root))
    if (
        not isinstance(staging_name, str)
        or not staging_name.startswith(settings.STAGING_PREFIX)
        or "/" in staging_name
        or not isinstance(paths, list)
        or not set(paths) <= known
    ):
        raise BuildDirError(
            [
                f"{settings.PUBLISH_JOURNAL}: names files no build writes; restore the "
                "published files with git, delete it and run `coop100 build`"
            ]
        )
    _swap(root, root / "build" / staging_name, paths)
    journal.unlink()
    shutil.rmtree(root / "build" / staging_name, ignore_errors=True)
    return paths


def prepare_build_dir(root: Path) -> None:
    """Finish an interrupted publish, sweep dead staging folders, refuse foreign files.

    Call with build_lock held.
    """
    finish_interrupted_publish(root)
    (root / settings.PUBLISH_JOURNAL).with_suffix(".json.tmp").unlink(missing_ok=True)
    for path in (root / "build").glob(settings.STAGING_PREFIX + "*"):
        # Only folders: a build stages into folders; files like .tmp-coop100.zip
        # belong to the site's steps.
        if path.is_dir():
            shutil.rmtree(path)
    foreign = foreign_files(root)
    if foreign:
        raise BuildDirError(
            [f"{rel}: not written by coop100 build; move it out of build/" for rel in foreign]
        )


def drifted_files(records_dir: Path, root: Path) -> list[Problem]:
    """Published files under root that differ from what records_dir builds.

    Raises:
        RecordsError: the records are invalid.
    """
    from .bulk import read_tables  # bulk imports records; keep package importable alone

    read = read_tables(records_dir)
    tables, sources = read.tables, read.sources
    with tempfile.TemporaryDirectory(prefix="coop100-drift-") as fresh:
        write_package_files(tables, Path(fresh), sources)
        return [
            Problem(
                rel,
                message="differs from what records/ builds",
                hint="run `coop100 build` and commit it",
            )
            for rel in published_files(root)
            if not (root / rel).is_file()
            or (root / rel).read_bytes() != (Path(fresh) / rel).read_bytes()
        ]


class PackageError(Exception):
    """The built package failed validation; `problems` lists what is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))
