"""The coop100 command line: thin wrappers around the library."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import settings
from .bulk import read_tables
from .package import PackageError, build_package
from .records import RecordsError
from .validate import validate_package

_root = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Project folder holding records/, datapackage.json, schemas/ and build/",
)


def _fail(problems: list[str], what: str) -> None:
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"{len(problems)} problem(s): {what}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(package_name="coop100")
def cli() -> None:
    """Build, check and serve the ILO COOP 100 data package."""


@cli.command()
@_root
def build(root: Path) -> None:
    """Validate records/ and publish the package: CSV, Parquet, schemas, datapackage.json.

    Nothing is published unless the whole package validates.

    Example:

        coop100 build
    """
    try:
        paths = build_package(root / settings.RECORDS_DIR, root, check=validate_package)
    except RecordsError as exc:
        _fail([str(p) for p in exc.problems], "nothing was published; fix the records above")
    except PackageError as exc:
        _fail(exc.problems, "the built package is invalid; nothing was published")
    click.echo(f"published {len(paths)} files under {root}")


@cli.command()
@_root
def validate(root: Path) -> None:
    """Check the records and the published package; exit 1 on any problem.

    Runs frictionless on the CSV and Parquet resources, checks every size and
    sha256 in datapackage.json, and reads both formats back with pyarrow to
    prove they hold the same rows.

    Example:

        coop100 validate
    """
    problems: list[str] = []
    try:
        read_tables(root / settings.RECORDS_DIR)
    except RecordsError as exc:
        problems += [str(p) for p in exc.problems]
    problems += validate_package(root)
    if problems:
        _fail(problems, "the package is not valid")
    click.echo("valid: records, checksums, CSV == Parquet, frictionless")
