"""The coop100 command line: thin wrappers around the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import settings
from .archive import ZIP_NAME, write_zip
from .database import DatabaseError, write_database
from .package import PackageError, build_package
from .records import RecordsError, load_records
from .site import settings as site_settings
from .site.build import build_site, datasette_command
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

    Nothing is published unless the whole package validates. Then load the
    published package into build/coop100.db and zip it into build/coop100.zip
    (both git-ignored).

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
    try:
        db_path = write_database(root)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    zip_path = write_zip(root / settings.DESCRIPTOR, root / "build" / ZIP_NAME)
    click.echo(f"wrote {db_path} and {zip_path}")


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
        load_records(root / settings.RECORDS_DIR)
    except RecordsError as exc:
        problems += [str(p) for p in exc.problems]
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
    immutable mode with the hardening plugin.

    Example:

        coop100 serve --port 8001
    """
    try:
        site = build_site(root, rebuild=rebuild)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    command = datasette_command(site, host, port)
    click.echo(f"coop100: serving {site.db_path} read-only at http://{host}:{port}/")
    sys.stderr.flush()
    sys.stdout.flush()
    # exec, so the server is this process: signals and the pid reach Datasette itself.
    os.execv(command[0], command)
