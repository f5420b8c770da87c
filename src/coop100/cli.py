"""The coop100 command line: thin wrappers around the library.

Exit codes: 0 when all is well, 1 when the data or build/ has problems (each
printed on its own line), 2 for a usage error (click's own convention).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from . import settings
from .database import DatabaseError
from .package import (
    BuildDirError,
    PackageError,
    build_lock,
    drifted_files,
    finish_interrupted_publish,
)
from .pipeline import build as build_all
from .problems import Problem, RecordsError
from .site import settings as site_settings
from .validate import validate_package

_root = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Project folder holding records/, datapackage.json, schemas/ and build/",
)


def _fail(problems: Sequence[Problem | str], what: str) -> NoReturn:
    for problem in problems:
        click.echo(str(problem), err=True)
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


@cli.command()
@_root
def build(root: Path) -> None:
    """Validate records/ and publish the package: CSV, Parquet, schemas, datapackage.json.

    Nothing is published unless the whole package validates (the Table Schema
    row checks run on pyarrow here, which frictionless is proven to agree with;
    `coop100 validate` runs frictionless itself), and a build that
    is interrupted at any point leaves either the old package or the new one,
    never a mix. The build refuses to run while build/ holds files it did not
    write. Then load the published package into build/coop100.db and zip it
    into build/coop100.zip (both git-ignored).

    Example:

        coop100 build
    """
    _check_root(root)
    published: list[str] = []

    def report(line: str) -> None:
        click.echo(line)
        published.append(line)

    try:
        build_all(root, report=report)
    except RecordsError as exc:
        _fail(exc.problems, "nothing was published; fix the records above")
    except PackageError as exc:
        _fail(exc.problems, "the built package is invalid; nothing was published")
    except BuildDirError as exc:
        _fail(exc.problems, "nothing was published")
    except DatabaseError as exc:
        _fail([str(exc)], "the package was published but the database was not written")
    except OSError as exc:
        what = "the database or zip could not be written" if published else None
        _fail([_os_problem(exc)], what or "the build could not write its files")


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
    problems: list[Problem | str] = []
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
        problems += exc.problems
    problems += validate_package(root)
    if problems:
        _fail(problems, "the package is not valid")
    click.echo("valid: records, checksums, CSV == Parquet, frictionless")


@cli.command()
@_root
@click.option("--host", default=site_settings.HOST, show_default=True, help="Address to listen on")
@click.option("--port", default=site_settings.PORT, show_default=True, type=int, help="Port")
@click.option("--rebuild", is_flag=True, help="Rebuild the database and zip even if up to date")
def serve(root: Path, host: str, port: int, rebuild: bool) -> None:
    """Serve the published package read-only through Datasette.

    Loads datapackage.json and its CSV files into build/coop100.db if it is
    missing or older than the package, zips the package, writes the site's
    metadata and row counts under build/site/, then runs Datasette in
    immutable mode with the hardening plugin. Needs only the published
    package, not records/.

    Example:

        coop100 serve --port 8001
    """
    if not (root / settings.DESCRIPTOR).is_file():
        raise click.UsageError(f"{root}: holds no {settings.DESCRIPTOR}; run coop100 build first")
    from .site.build import build_site, datasette_command  # only serving needs the site

    try:
        site = build_site(root, rebuild=rebuild)
    except DatabaseError as exc:
        _fail([str(exc)], "the package could not be loaded into SQLite")
    command = datasette_command(site, host, port)
    click.echo(f"coop100: serving {site.db_path} read-only at http://{host}:{port}/")
    sys.stdout.flush()
    # exec, so the server is this process: signals and the pid reach Datasette itself.
    os.execv(command[0], command)
