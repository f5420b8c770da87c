"""The coop100 command line: thin wrappers around the library.

Exit codes: 0 when all is well, 1 when the data or build/ has problems (each
printed on its own line), 2 for a usage error (click's own convention).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from . import settings
from .package import (
    BuildDirError,
    PackageError,
    build_lock,
    build_package,
    drifted_files,
    finish_interrupted_publish,
)
from .records import RecordsError
from .validate import validate_package

_root = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Project folder holding records/, datapackage.json, schemas/ and build/",
)


def _fail(problems: list[str], what: str) -> NoReturn:
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"{len(problems)} problem(s): {what}", err=True)
    sys.exit(1)


def _check_root(root: Path) -> None:
    if not (root / settings.RECORDS_DIR).is_dir():
        raise click.UsageError(
            f"{root}: holds no {settings.RECORDS_DIR}/ folder; "
            "run coop100 in the project folder or pass --root"
        )


def _os_problem(exc: OSError) -> str:
    return f"{exc.filename or 'build'}: {exc.strerror or exc}"


@click.group()
@click.version_option(package_name="coop100")
def cli() -> None:
    """Build, check and serve the ILO COOP 100 data package."""


def _check_staged(staging: Path) -> list[str]:
    # frictionless costs a second of start-up even on this small package. The
    # columnar checks enforce the same Table Schema rules (tests/test_benchmarks.py)
    # and the descriptor is ours; `coop100 validate` and CI run frictionless on both.
    return validate_package(staging, engine="columnar", check_descriptor=False)


@cli.command()
@_root
def build(root: Path) -> None:
    """Validate records/ and publish the package: CSV, Parquet, schemas, datapackage.json.

    Nothing is published unless the whole package validates (the Table Schema
    row checks run on pyarrow here, which frictionless is proven to agree with;
    `coop100 validate` runs frictionless itself), and a build that
    is interrupted at any point leaves either the old package or the new one,
    never a mix. The build refuses to run while build/ holds files it did not
    write.

    Example:

        coop100 build
    """
    _check_root(root)
    try:
        paths = build_package(root / settings.RECORDS_DIR, root, check=_check_staged)
    except RecordsError as exc:
        _fail([str(p) for p in exc.problems], "nothing was published; fix the records above")
    except PackageError as exc:
        _fail(exc.problems, "the built package is invalid; nothing was published")
    except BuildDirError as exc:
        _fail(exc.problems, "nothing was published")
    except OSError as exc:
        _fail([_os_problem(exc)], "the build could not write its files")
    click.echo(f"published {len(paths)} files under {root}")


@cli.command()
@_root
def validate(root: Path) -> None:
    """Check the records and the published package; exit 1 on any problem.

    Checks every record, that the published files are what the records build
    (no drift), every size and sha256 in datapackage.json, frictionless on the
    CSV and Parquet resources, and that both formats hold the same rows. If a
    build was killed while publishing, finishes it first.

    Example:

        coop100 validate
    """
    _check_root(root)
    problems: list[str] = []
    try:
        if (root / settings.PUBLISH_JOURNAL).exists():
            with build_lock(root):
                finished = finish_interrupted_publish(root)
            click.echo(f"finished an interrupted build: moved {len(finished)} files into place")
    except BuildDirError as exc:
        problems += exc.problems
    try:
        problems += drifted_files(root / settings.RECORDS_DIR, root)
    except RecordsError as exc:
        problems += [str(p) for p in exc.problems]
    problems += validate_package(root)
    if problems:
        _fail(problems, "the package is not valid")
    click.echo("valid: records, checksums, CSV == Parquet, frictionless")
