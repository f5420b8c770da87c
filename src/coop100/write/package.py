"""Write the published package: CSV, Parquet, Table Schemas and datapackage.json."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv

from coop100 import settings
from coop100.background import fsync
from coop100.problems import Problem
from coop100.rules.models import MODELS, About, Record, Source
from coop100.rules.tables import arrow_schema, table_schema
from coop100.versions.release import Release
from coop100.write.catalog import doi_url, write_catalog_files
from coop100.write.digest import file_digest
from coop100.write.documents import Feed, document_paths, document_resources, open_documents
from coop100.write.layout import Layout, ParquetTableWriter, layout

CSV_OPTIONS = pacsv.WriteOptions(
    include_header=True, delimiter=",", eol="\r\n", quoting_style="needed", quoting_header="none"
)


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    # Times are whole seconds; written as HH:MM:SS rather than Arrow's HH:MM:SS.000.
    return pa.schema(
        [f.with_type(pa.time32("s")) if pa.types.is_time(f.type) else f for f in schema]
    )


def parquet_metadata(schema: dict[str, Any], about: About) -> dict[str, str]:
    """The key-value metadata every published Parquet file carries.

    Not the package's version: a file then changes only when its table does, so a
    release that adds one event rewrites the files of the tables it adds rows to,
    not all of them. The version is in datapackage.json, beside every file's hash.
    """
    return {
        "table_schema": json.dumps(schema, ensure_ascii=False),
        "package_name": about.name,
        "license": about.licenses[0].name,
    }


class TableWriter:
    """One table's CSV and Parquet files, written a batch at a time.

    The bytes are those of writing the whole table at once: CSV rows go out as
    they come, in records order; the Parquet file is laid out for readers as
    layout.py decides (sorted, in small row groups), in bounded memory.
    """

    def __init__(
        self, root: Path, model: type[Record], about: About, table_layout: Layout | None = None
    ) -> None:
        # The files written, relative to root: the schema at once, the others on close.
        self.schema_path = f"{settings.SCHEMAS_DIR}/{model.table}.json"
        self.paths = (
            f"{settings.CSV_DIR}/{model.table}.csv",
            f"{settings.PARQUET_DIR}/{model.table}.parquet",
        )
        schema = table_schema(model)
        (root / self.schema_path).write_bytes(_json_bytes(schema))
        arrow = arrow_schema(model)
        self._csv_schema = _csv_schema(arrow)
        self._csv = pacsv.CSVWriter(
            root / self.paths[0],
            self._csv_schema,
            write_options=CSV_OPTIONS,
        )
        self._parquet = ParquetTableWriter(
            root / self.paths[1],
            arrow.with_metadata(parquet_metadata(schema, about)),
            table_layout or layout(model.table),
        )
        self.rows = 0

    def write(self, batch: pa.Table) -> None:
        """Append rows in the published schema."""
        self._csv.write_table(batch.cast(self._csv_schema))
        self._parquet.write(batch)
        self.rows += batch.num_rows

    def close(self) -> None:
        """Write the last rows and close both files."""
        self._csv.close()
        self._parquet.close()


def descriptor(root: Path, sources: list[Source], release: Release, about: About) -> dict[str, Any]:
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
                # bytes: a standard `bytes` always fails its check (5.21), while it
                # skips `hash`, which other tools can check. `coop100 validate`
                # checks both.
                resource |= {"coop100:bytes": size, "hash": f"sha256:{sha256}"}
            resource["schema"] = f"{settings.SCHEMAS_DIR}/{model.table}.json"
            resources.append(resource)
    resources += document_resources(root)
    return {
        "$schema": settings.DATA_PACKAGE_PROFILE,
        "name": about.name,
        "title": about.title,
        "description": about.description,
        "version": release.version,
        "coop100:released": release.released,
        "coop100:credit": about.credit,
        **({"id": doi_url(about)} if about.doi else {}),
        "homepage": about.homepage,
        "coop100:repository": about.repository,
        "keywords": about.keywords,
        "licenses": [license.model_dump() for license in about.licenses],
        "contributors": [contributor.model_dump() for contributor in about.contributors],
        "sources": [
            {"title": f"{s.label}: {s.title}", **({"path": s.url} if s.url else {})}
            for s in sources
        ],
        "resources": resources,
    }


class Rows(Protocol):
    """The records to publish: the sources, and each table's rows a batch at a time."""

    sources: list[Source]
    about: About

    def size(self) -> int: ...

    def batches(self, table: str) -> Iterator[pa.Table]: ...


class Written(Protocol):
    """Told of each file of the package as it is written (archive.Deflater zips them meanwhile)."""

    def follow(self, name: str, path: Path) -> None:
        """name (relative to root) is being written at path, by appending only."""

    def add(self, name: str) -> None:
        """name is whole, at root/name, and will not change."""


class _Untold:
    """Written that nobody listens to."""

    def follow(self, name: str, path: Path) -> None:
        pass

    def add(self, name: str) -> None:
        pass


_UNTOLD = _Untold()


def write_package_files(
    rows: Rows,
    root: Path,
    releases: list[Release],
    feeds: Sequence[Feed] = (),
    written: Written = _UNTOLD,
) -> None:
    """Write every published file of the package under root (which must exist).

    Each table is written as its batches come, and every batch is also given to
    the documents (the Popolo export…) and to `feeds` (the build's SQLite load),
    which are closed once the last table ends, the feeds first. `written` is told
    of every file as it begins and once it is whole, the descriptor last.
    releases: every release, newest first (release.read_releases); the first is this one.
    """
    for sub in (settings.CSV_DIR, settings.PARQUET_DIR, settings.SCHEMAS_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    documents = open_documents(root, releases, rows.about, rows.sources)
    for path, document in zip(document_paths(), documents, strict=True):
        if document.appending:
            written.follow(path, document.appending)
    for model in MODELS:
        writer = TableWriter(root, model, rows.about)
        written.add(writer.schema_path)
        for path in writer.paths:
            written.follow(path, root / path)
        for batch in rows.batches(model.table):
            writer.write(batch)
            for feed in [*documents, *feeds]:
                feed.add(model.table, batch)
        writer.close()
        for path in writer.paths:
            written.add(path)
        pa.default_memory_pool().release_unused()  # the row group just written, back to the OS
        checkpoint("writing")
    for feed in [*feeds, *documents]:
        feed.close()
    for path in document_paths():
        written.add(path)
    described = descriptor(root, rows.sources, releases[0], rows.about)
    descriptor_bytes = _json_bytes(described)
    (root / settings.DESCRIPTOR).write_bytes(descriptor_bytes)
    written.add(settings.DESCRIPTOR)
    # Not in the zip: they describe it (and the catalogue, the descriptor's bytes).
    write_catalog_files(root, described, descriptor_bytes, rows.sources, releases, rows.about)


def table_resources() -> list[dict[str, Any]]:
    """The package's CSV resources with their schemas, as database.read_descriptor gives them."""
    return [
        {
            "name": model.table,
            "path": f"{settings.CSV_DIR}/{model.table}.csv",
            "schema": table_schema(model),
        }
        for model in MODELS
    ]


def published_files(root: Path) -> list[str]:
    """Paths (relative to root) of every file a build publishes."""
    paths = [settings.DESCRIPTOR, *document_paths(), *settings.CATALOG_FILES]
    for model in MODELS:
        paths += [
            f"{settings.SCHEMAS_DIR}/{model.table}.json",
            f"{settings.CSV_DIR}/{model.table}.csv",
            f"{settings.PARQUET_DIR}/{model.table}.parquet",
        ]
    return paths


# -- publishing: all files or none ----------------------------------------------------
#
# The published files live in three folders, so no single rename can swap them
# all. Instead a journal is the commit point: every file is staged and fsynced
# under build/.tmp-*, then build/.coop100-publish.json is written atomically,
# naming the staging folder and, for every file, the size and sha256 of what was
# published before and of what is staged. Before the journal exists a kill
# leaves the published files untouched (the staging folder is swept by the next
# build). Once it exists the new package is decided: the swap renames each file
# into place, and if it is killed half-way the next `coop100 build`, `coop100
# validate` or `coop100 serve` finishes it from the journal (roll forward) before
# doing anything else. Renames are idempotent, so a kill during the roll forward
# is finished by the one after. The roll forward first checks every file is one
# the journal knows: a file already moved must hold the new bytes, one still
# staged the old or the new. Anything else (say `git checkout -- .` restored the
# old files after the kill) was written by someone else: renaming the rest over
# it would leave a mix, so it refuses and names the files.


class BuildDirError(Exception):
    """build/ is not in a state a build may touch; `problems` says why."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(map(str, problems)))


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


def fsync_files(root: Path, paths: list[str]) -> None:
    """Write the files (relative to root) to disk, one after another."""
    for rel in paths:
        fsync(root / rel)


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
        fsync(folder)


Digest = tuple[int, str]  # size in bytes, sha256


def _digest(path: Path) -> Digest | None:
    return file_digest(path) if path.is_file() else None


def _staged_digests(staging: Path, paths: list[str]) -> dict[str, Digest]:
    """Size and sha256 of every staged file; the data files' are in the staged descriptor."""
    found: dict[str, Digest] = {}
    staged = json.loads((staging / settings.DESCRIPTOR).read_text(encoding="utf-8"))
    for resource in staged["resources"]:
        size = resource.get("bytes", resource.get("coop100:bytes"))
        sha256 = resource.get("hash", resource.get("coop100:hash"))
        found[resource["path"]] = (size, sha256.removeprefix("sha256:"))
    return {rel: found.get(rel) or file_digest(staging / rel) for rel in paths}


def published_digests(root: Path) -> dict[str, Digest | None]:
    """Size and sha256 of every published file under root (None for one that is missing)."""
    return {rel: _digest(root / rel) for rel in published_files(root)}


def publish(
    staging: Path, root: Path, paths: list[str], old: dict[str, Digest | None] | None = None
) -> None:
    """Move the staged files into place as one step (see the comment above).

    old holds published_digests(root) if the caller has them already.
    """
    fsync_files(staging, paths)
    new = _staged_digests(staging, paths)
    if old is None:
        old = published_digests(root)
    entry = {
        "staging": staging.name,
        "files": [{"path": rel, "old": old.get(rel), "new": new[rel]} for rel in paths],
    }
    journal = root / settings.PUBLISH_JOURNAL
    pending = journal.with_name(journal.name + ".tmp")
    pending.write_bytes(_json_bytes(entry))
    fsync(pending)
    os.replace(pending, journal)
    fsync(journal.parent)
    checkpoint("committed")
    _swap(root, staging, paths)
    checkpoint("swapped")
    journal.unlink()
    fsync(journal.parent)
    checkpoint("published")


def _read_journal(root: Path) -> tuple[str, list[dict[str, Any]]]:
    journal = root / settings.PUBLISH_JOURNAL
    retry = "delete it and run `coop100 build`"
    try:
        entry = json.loads(journal.read_text(encoding="utf-8"))
        staging_name, files = entry["staging"], entry["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildDirError(
            [
                f"{settings.PUBLISH_JOURNAL}: cannot be read ({exc}); restore the published "
                f"files with git, {retry}"
            ]
        ) from None
    known = set(published_files(root))
    if isinstance(files, list) and any(isinstance(f, str) for f in files):
        raise BuildDirError(
            [
                f"{settings.PUBLISH_JOURNAL}: was written by an older coop100 and holds no "
                f"checksums to finish with; restore the published files with git, {retry}"
            ]
        )
    if (
        not isinstance(staging_name, str)
        or not staging_name.startswith(settings.STAGING_PREFIX)
        or "/" in staging_name
        or not isinstance(files, list)
        or not all(isinstance(f, dict) and f.get("path") in known for f in files)
    ):
        raise BuildDirError(
            [
                f"{settings.PUBLISH_JOURNAL}: names files no build writes; restore the "
                f"published files with git, {retry}"
            ]
        )
    return staging_name, files


def _as_digest(value: Any) -> Digest | None:
    return (value[0], value[1]) if isinstance(value, list) and len(value) == 2 else None


def _foreign_changes(root: Path, staging: Path, files: list[dict[str, Any]]) -> list[str]:
    """Files the roll forward would leave mixed or overwrite: neither old nor new as journaled."""
    problems = []
    for entry in files:
        rel = entry["path"]
        old, new = _as_digest(entry.get("old")), _as_digest(entry.get("new"))
        now = _digest(root / rel)
        if (staging / rel).exists():
            if new is None or _digest(staging / rel) != new:
                problems.append(
                    f"{(staging / rel).relative_to(root)}: is not what the interrupted build staged"
                )
            elif now not in (old, new):
                problems.append(
                    f"{rel}: changed since the build was interrupted (neither the file it "
                    "replaces nor the one it publishes)"
                )
        elif new is None or now != new:
            problems.append(
                f"{rel}: is not the file the interrupted build published, and no "
                "staged copy is left to finish with"
            )
    return problems


def finish_interrupted_publish(root: Path) -> list[str]:
    """Roll forward a publish that was killed after its commit point.

    Returns:
        The files the journal names, or [] when no publish was interrupted.
    Raises:
        BuildDirError: the journal cannot be read, or a file it names holds bytes it
            did not journal: rolling forward would leave a mixed package.
    """
    journal = root / settings.PUBLISH_JOURNAL
    if not journal.exists():
        return []
    staging_name, files = _read_journal(root)
    staging = root / "build" / staging_name
    problems = _foreign_changes(root, staging, files)
    if problems:
        raise BuildDirError(
            [
                *problems,
                f"{settings.PUBLISH_JOURNAL}: a build was interrupted while publishing, and "
                "finishing it now would mix its files with the ones above; nothing was "
                f"changed. Delete {settings.PUBLISH_JOURNAL} and run `coop100 build` to "
                "publish what records/ builds",
            ]
        )
    paths = [entry["path"] for entry in files]
    _swap(root, staging, paths)
    journal.unlink()
    shutil.rmtree(staging, ignore_errors=True)
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


class PackageError(Exception):
    """The built package failed validation; `problems` lists what is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))
