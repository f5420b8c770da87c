"""The build, one step after another: records -> tables -> files -> database and zip.

`build` is the one function that runs it all; `coop100 build`, benchmarks/run.py
and the tests call it. The steps themselves live in their own modules (records
and bulk read, integrity checks across records, package writes and publishes,
database loads, archive zips); a `Timer` may time each (the benchmarks pass one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .archive import ZIP_NAME, write_zip
from .database import write_database
from .package import build_package
from .problems import Problem
from .validate import validate_package

# Called with a step's name; the context it returns spans the step.
Timer = Callable[[str], AbstractContextManager[object]]


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
    """The check a staged package must pass before it is published."""
    # frictionless costs a second of start-up even on this small package. The
    # columnar checks enforce the same Table Schema rules (tests/test_benchmarks.py)
    # and the descriptor is ours; `coop100 validate` and CI run frictionless on both.
    return validate_package(staging, engine="columnar", check_descriptor=False)


def build(
    root: Path, timer: Timer = untimed, report: Callable[[str], None] = lambda line: None
) -> Built:
    """Validate root/records, publish the package under root, then load and zip it.

    `report` is told each milestone in a line (the CLI prints them).

    Raises:
        RecordsError, PackageError, BuildDirError: nothing was published.
        DatabaseError, OSError: after `report` said "published", the database or zip.
    """
    paths = build_package(root / settings.RECORDS_DIR, root, check=check_staged, timer=timer)
    report(f"published {len(paths)} files under {root}")
    with timer("load SQLite (keys, indexes, FTS) and write zip"):
        database, zipped = _write_database_and_zip(root)
    report(f"wrote {database} and {zipped}")
    return Built(paths, database, zipped)


def _write_database_and_zip(root: Path) -> tuple[Path, Path]:
    # zlib and SQLite release the GIL, so the zip is written on the second core
    # while the database loads: at 1M statements the build is ~10 s shorter.
    with ThreadPoolExecutor(max_workers=1) as pool:
        zipped = pool.submit(write_zip, root / settings.DESCRIPTOR, root / "build" / ZIP_NAME)
        return write_database(root), zipped.result()
