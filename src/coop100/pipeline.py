"""The build, one step after another: records -> package -> database and zip.

`build` is the one function that runs it all; `coop100 build`, benchmarks/run.py
and the tests call it. It streams: each table's rows are read, checked and
written (CSV, Parquet, the Popolo export) a piece at a time, and each piece is
also loaded into SQLite, by a second process for a big archive
(database.LoadProcess), so memory stays flat however big the archive and both
cores work. The loaded tables then answer whether any rule across records is
broken (integrity.py) while the zip is written from the staging folder; only
then is the package published, and the facet counts and views finish the
database. A `Timer` may time each step (the benchmarks pass one). See
docs/design/streaming.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from coop100 import settings
from coop100.background import lower_priority
from coop100.load.process import InlineLoad, LoadProcess
from coop100.problems import DatabaseError, Problem
from coop100.read.bulk import Unsure, Whole, read_tables, read_whole, stream_tables
from coop100.rules.integrity import CitedParagraphs
from coop100.rules.models import MODELS, Source
from coop100.rules.tables import arrow_schema, to_arrow
from coop100.settings import DB_NAME
from coop100.verify.validate import column_problem
from coop100.versions.release import read_releases
from coop100.write.archive import ZIP_NAME, Deflater, write_zip
from coop100.write.package import (
    PackageError,
    Rows,
    build_lock,
    checkpoint,
    fsync_files,
    prepare_build_dir,
    publish,
    published_digests,
    published_files,
    table_resources,
    write_package_files,
)

# Records of this many bytes (bulk files) are loaded into SQLite by a second process;
# below, in this one: a second interpreter's imports cost ~0.3 s, 30 MB of
# statements (~70,000) about as long to load.
SECOND_PROCESS_MIN_BYTES = 32 << 20
# The staging folder's folder for the zip's members, compressed ahead (archive.Deflater).
_ZIP_SPOOL = ".zip-spool"
# Called with a step's name; the context it returns spans the step.
Timer = Callable[[str], AbstractContextManager[object]]
# Given the staging folder, the problems that keep it from being published.
Check = Callable[[Path], list[Any]]


def untimed(name: str) -> AbstractContextManager[object]:
    """The Timer that times nothing."""
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Built:
    """What a build wrote: the published paths (relative to root), the database and zip."""

    paths: list[str]
    database: Path
    zip: Path


def check_staged(staging: Path) -> list[Problem]:
    """The check a staged package must pass before it is published, besides the load's.

    Every row was checked against its model before it was written, and SQLite's
    types, keys and NOT NULL hold every row it loaded (the build compares its row
    counts with the Parquet files'). This reads each Parquet file's footer: its
    columns and types must be the published ones. `coop100 validate` and CI check
    every row of both formats.
    """
    problems = []
    for model in MODELS:
        path = staging / settings.PARQUET_DIR / f"{model.table}.parquet"
        message = column_problem(pq.read_schema(path), arrow_schema(model))
        if message:
            problems.append(Problem(table=model.table, message=message))
    return problems


def build(
    root: Path,
    timer: Timer = untimed,
    report: Callable[[str], None] = lambda line: None,
    check: Check = check_staged,
) -> Built:
    """Validate root/records, publish the package under root, then finish the database and zip.

    `report` is told each milestone in a line (the CLI prints them); `check` may
    refuse the staged package.

    Raises:
        RecordsError, PackageError, BuildDirError: nothing was published.
        DatabaseError, OSError: after `report` said "published", the database or zip.
    """
    records_dir = root / settings.RECORDS_DIR
    releases = read_releases(records_dir)
    with timer("read and check the YAML records"):
        rows: Rows
        try:
            rows = stream_tables(records_dir)
        except Unsure as unsure:
            rows = read_whole(records_dir, unsure)
    created = not (root / "build").exists()
    (root / "build").mkdir(parents=True, exist_ok=True)
    try:
        return _build_locked(root, rows, releases, timer, report, check)
    except BaseException:
        if created:  # as before the build: records found wrong leave no build/ behind
            shutil.rmtree(root / "build", ignore_errors=True)
        raise


def _build_locked(
    root: Path,
    rows: Rows,
    releases: list[Any],
    timer: Timer,
    report: Callable[[str], None],
    check: Check,
) -> Built:
    records_dir = root / settings.RECORDS_DIR
    with build_lock(root):
        prepare_build_dir(root)
        # The journal records what is published now; hash it on a thread of its own
        # at the lowest priority while the new package is written (hashlib lets go
        # of the GIL): it is needed only to publish.
        with (
            ThreadPoolExecutor(max_workers=1) as pool,
            ThreadPoolExecutor(max_workers=1, initializer=lower_priority) as side,
        ):
            old = side.submit(published_digests, root)
            try:
                staged = _stage(rows, root, releases, check, timer, pool, side)
            except Unsure as unsure:
                if isinstance(rows, Whole):  # the rules disagree: say what SQLite found
                    raise PackageError(unsure.problems) from None
                with timer("read the records whole to report their problems"):
                    rows = read_whole(records_dir, unsure)
                staged = _stage(rows, root, releases, check, timer, pool, side)
            with staged:
                paths = published_files(staged.staging)
                with timer("publish"):
                    publish(staged.staging, root, paths, old.result())
                report(f"published {len(paths)} files under {root}")
                zipped = root / "build" / ZIP_NAME
                os.replace(staged.staging / ZIP_NAME, zipped)
                with timer("facet counts, views"):
                    database = staged.load.finish()
    report(f"wrote {database} and {zipped}")
    return Built(paths, database, zipped)


@dataclass
class _Staged:
    """A package staged and checked, its database loaded, indexed and judged, its zip."""

    staging: Path
    load: LoadProcess | InlineLoad
    deflater: Deflater
    zip: Future[Path] | None = None

    def __enter__(self) -> _Staged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.load.abort()
        self.deflater.close()
        if self.zip is not None:
            with contextlib.suppress(Exception):  # its own failure is not this one's
                self.zip.result()
        shutil.rmtree(self.staging, ignore_errors=True)


def _stage(
    rows: Rows,
    root: Path,
    releases: list[Any],
    check: Check,
    timer: Timer,
    pool: ThreadPoolExecutor,
    side: ThreadPoolExecutor,
) -> _Staged:
    """Write the package into a staging folder while a second process loads it; judge both.

    Raises:
        Unsure: SQLite found a rule across records broken.
        PackageError: the staged package failed a check.
    """
    staging = Path(tempfile.mkdtemp(prefix=settings.STAGING_PREFIX, dir=root / "build"))
    # A second process pays for itself once the records are more than a few thousand.
    kind = LoadProcess if rows.size() >= SECOND_PROCESS_MIN_BYTES else InlineLoad
    load = kind(table_resources(), root / "build" / DB_NAME, staging / DB_NAME)
    # Each file is compressed for the zip on a thread as soon as it is written:
    # zlib lets go of the GIL, and the second core has time to spare while the
    # tables stream (this process is the slower one).
    deflater = Deflater(staging, staging / _ZIP_SPOOL)
    staged = _Staged(staging, load, deflater)
    cited = CitedParagraphs(to_arrow(Source, rows.sources))
    with _unless_done(staged):
        with timer("read, check and write every table; load it into SQLite"):
            feeds = [load, cited]
            write_package_files(rows, staging, releases, feeds=feeds, written=deflater)
        checkpoint("staged")
        side.submit(fsync_files, staging, published_files(staging))
        # The zip's members, in order, as the thread finishes them, while the second
        # process indexes (it began once the last row was fed: load.close).
        staged.zip = pool.submit(
            write_zip, staging / settings.DESCRIPTOR, staging / ZIP_NAME, deflater.deflated
        )
        with timer("index SQLite; check the rules across records; zip"):
            try:
                counts, broken = staged.load.check()
            except DatabaseError as exc:
                raise PackageError([Problem(f"build/{DB_NAME}", message=str(exc))]) from None
            broken = [*broken, *cited.broken]
        if broken:
            raise Unsure(
                [
                    Problem(
                        settings.RECORDS_DIR,
                        message=f"breaks a rule across records ({rule})",
                        hint="fix the records",
                    )
                    for rule in broken
                ]
            )
        with timer("check the staged package"):
            problems = check(staging) + _row_counts(staging, counts)
        if problems:
            raise PackageError(problems)
        with timer("finish the zip"):
            staged.zip.result()
        checkpoint("checked")
    return staged


@contextlib.contextmanager
def _unless_done(staged: _Staged) -> Iterator[None]:
    """Clean the staged package and its database away if the block does not finish."""
    try:
        yield
    except BaseException:
        staged.__exit__()
        raise


def _row_counts(staging: Path, counts: dict[str, int]) -> list[Problem]:
    """Each table's Parquet file holds as many rows as SQLite read from its CSV."""
    problems = []
    for model in MODELS:
        path = staging / settings.PARQUET_DIR / f"{model.table}.parquet"
        rows = pq.read_metadata(path).num_rows
        if counts.get(model.table) != rows:
            message = f"Parquet holds {rows} rows, the CSV {counts.get(model.table)}"
            problems.append(Problem(table=model.table, message=message))
    return problems


def write_whole(records_dir: Path, root: Path) -> None:
    """Read the records whole and write the package they build under root (which must exist).

    For the checks that compare a package with the records (drift, releases).

    Raises:
        RecordsError: the records are invalid.
    """
    read = read_tables(records_dir)
    write_package_files(
        Whole(read.tables, read.sources, read.about), root, read_releases(records_dir)
    )


def drifted_files(records_dir: Path, root: Path) -> list[Problem]:
    """Published files under root that differ from what records_dir builds.

    Raises:
        RecordsError: the records are invalid.
    """
    with tempfile.TemporaryDirectory(prefix="coop100-drift-") as fresh:
        write_whole(records_dir, Path(fresh))
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
