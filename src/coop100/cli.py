"""The coop100 command line: thin wrappers around the library.

Exit codes: 0 when all is well, 1 when the data or build/ has problems (each
printed on its own line), 2 for a usage error (click's own convention).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NoReturn

import click

from coop100 import report, settings
from coop100.pipeline import build as build_all
from coop100.pipeline import drifted_files, write_whole
from coop100.problems import DatabaseError, Problem, RecordsError
from coop100.read.records import EVENTS_DIR
from coop100.rules.models import Slug
from coop100.site import settings as site_settings
from coop100.verify.validate import check_checksums, validate_package
from coop100.versions.release import TAG_PREFIX as TAG
from coop100.versions.release import ReleaseError, add_release, plan_release
from coop100.write.package import (
    BuildDirError,
    PackageError,
    build_lock,
    finish_interrupted_publish,
)

_root = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Project folder holding records/, datapackage.json, schemas/ and build/",
)


_format = click.option(
    "--format",
    "format_",
    type=click.Choice(report.FORMATS),
    default="text",
    show_default=True,
    help="Problems as text lines, GitHub workflow commands (and a step summary), or JSON",
)


def _report(problems: Sequence[Problem | str], outcome: str) -> None:
    context = click.get_current_context()
    report.emit(problems, outcome, context.info_name or "", context.params.get("format_", "text"))


def _fail(problems: Sequence[Problem | str], what: str) -> NoReturn:
    _report(problems, what)
    sys.exit(1)


def _say(message: str) -> None:
    """Progress: on stdout, unless stdout is for the JSON report."""
    click.echo(message, err=click.get_current_context().params.get("format_") == "json")


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
    """Build, check and serve the data package."""


def _build(root: Path) -> None:
    published: list[str] = []

    def progress(line: str) -> None:
        published.append(line)
        if len(published) == 1:  # "published N files": the last line is the outcome below
            _say(line)

    try:
        built = build_all(root, report=progress)
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
    _report([], f"wrote {built.database} and {built.zip}")


@cli.command()
@_root
@_format
def build(root: Path, format_: str) -> None:
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
        coop100 build --format github   # on GitHub: errors marked on their lines
    """
    _check_root(root)
    _build(root)


@cli.command("new-event")
@_root
@click.argument("event_id")
def new_event(root: Path, event_id: str) -> None:
    """Start records/events/EVENT_ID.yaml from the template of an event file.

    The template names every field an event, its participations, statements and
    topic links take; fill in what a source states, delete what none does, then
    `make build` and `make test`.

    Example:

        coop100 new-event my-event-2020
    """
    # Lazy, for start-up time: every other command would pay for pydantic's TypeAdapter.
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(Slug).validate_python(event_id)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise click.UsageError(f"EVENT_ID: {message}") from None
    path = root / settings.RECORDS_DIR / EVENTS_DIR / f"{event_id}.yaml"
    if path.exists():
        raise click.ClickException(f"{path.relative_to(root)} exists already; edit it instead")
    path.parent.mkdir(parents=True, exist_ok=True)
    template = resources.files("coop100").joinpath("templates/event.yaml").read_text("utf-8")
    path.write_text(template.replace("EVENT_ID", event_id), encoding="utf-8")
    _say(f"wrote {path.relative_to(root)}: fill it in, then make build")


def _finish_publish(root: Path) -> None:
    finished = finish_interrupted_publish(root)
    if finished:
        _say(f"finished an interrupted build: moved {len(finished)} files into place")


def _check_whole(root: Path) -> None:
    """Refuse to serve a package whose files differ from its descriptor's sizes and hashes."""
    try:
        descriptor = json.loads((root / settings.DESCRIPTOR).read_text(encoding="utf-8"))
        problems = check_checksums(root, descriptor)
    except (OSError, ValueError) as exc:
        raise BuildDirError([f"{settings.DESCRIPTOR}: cannot be read ({exc})"]) from None
    except (AttributeError, KeyError, TypeError):
        raise BuildDirError(
            [f"{settings.DESCRIPTOR}: is not a package coop100 published; run `coop100 build`"]
        ) from None
    if problems:
        raise BuildDirError(problems)


@cli.command()
@_root
@click.option(
    "--since",
    help="The last release: a git ref, or a package's folder, zip or URL "
    "[default: the newest v<version> tag]",
)
@click.option(
    "--version",
    "version",
    help="The version to release [default: the smallest the changes allow]",
)
@click.option("--date", help="The release date, YYYY-MM-DD [default: today, UTC]")
@click.option("--dry-run", is_flag=True, help="Print the release notes; write nothing")
def release(
    root: Path, since: str | None, version: str | None, date: str | None, dry_run: bool
) -> None:
    """Release the records as the next version, with notes of what changed.

    Builds the records, diffs them against the last release, works out the
    smallest version bump the Data Package Version recipe allows (MAJOR: a
    field renamed, added, removed, reordered or retyped; MINOR: tables or rows
    added; PATCH: data or metadata fixed), refuses a --version that
    understates it, adds the release (version, date, notes) to
    records/releases.json and rebuilds: datapackage.json, CHANGES.md,
    CITATION.cff and the site follow. Then commit and tag v<version>.

    Example:

        coop100 release --since v1.0.0
    """
    _check_root(root)
    records_dir = root / settings.RECORDS_DIR
    try:
        with tempfile.TemporaryDirectory(prefix="coop100-candidate-") as candidate:
            write_whole(records_dir, Path(candidate))
            plan = plan_release(root, Path(candidate), since, version, date)
    except RecordsError as exc:
        _fail([str(p) for p in exc.problems], "nothing was released; fix the records above")
    except ReleaseError as exc:
        _fail(exc.problems, "nothing was released")
    click.echo(
        f"{plan.previous} -> {plan.release.version} ({plan.release.bump}), since {plan.since}"
    )
    if dry_run:
        click.echo(plan.release.notes)
        return
    add_release(root, plan)
    _build(root)
    click.echo(
        f"released {plan.release.version}: commit, then `git tag {TAG}{plan.release.version}`"
    )


@cli.command()
@_root
@_format
def validate(root: Path, format_: str) -> None:
    """Check the records and the published package; exit 1 on any problem.

    Checks every record, that the published files are what the records build
    (no drift), every size and sha256 in datapackage.json, frictionless on the
    CSV and Parquet resources, and that both formats hold the same rows. If a
    build was killed while publishing, finishes it first.

    Example:

        coop100 validate
        coop100 validate --format json
    """
    _check_root(root)
    problems: list[Problem | str] = []
    try:
        if (root / settings.PUBLISH_JOURNAL).exists():
            with build_lock(root):
                _finish_publish(root)
    except BuildDirError as exc:
        problems += exc.problems
    try:
        problems += drifted_files(root / settings.RECORDS_DIR, root)
    except RecordsError as exc:
        problems += exc.problems
    problems += validate_package(root)
    if problems:
        _fail(problems, "the package is not valid")
    _report([], "valid: records, checksums, CSV == Parquet, frictionless")


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
    help="Markdown for people (and GitHub step summaries), JSON for programs",
)
@click.option(
    "--max-rows",
    type=int,
    default=None,
    help="Show at most this many rows per list (default: all of them)",
)
@click.option(
    "--level",
    type=click.IntRange(1, 5),
    default=2,
    show_default=True,
    help="Markdown heading level of the title (to nest it under a heading of yours)",
)
def diff(old: str, new: str, fmt: str, max_rows: int | None, level: int) -> None:
    """Show what changed from package OLD to package NEW, row by row.

    OLD and NEW are each a folder holding datapackage.json, a zip of a package,
    or the http(s) URL of a descriptor. Rows are matched by each table's primary
    key: added, removed and changed rows (each changed field with its old and new
    value), and every change of fields, types, constraints and keys.

    Example:

        coop100 diff v1.0.0.zip . --format markdown
    """
    # Lazy, for start-up time: only `diff` needs the differ and what it imports.
    from coop100.versions.diff import DiffError, diff_packages

    try:
        result = diff_packages(old, new)
    except DiffError as exc:
        _fail([str(exc)], "nothing was compared")
    if fmt == "json":
        click.echo(result.to_json(max_rows=max_rows))
    else:
        click.echo(result.to_markdown(max_rows=max_rows, level=level), nl=False)


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
    package, not records/. Finishes a build that was killed while publishing
    first, and refuses to serve a package whose files differ from the sizes
    and sha256 in datapackage.json.

    Example:

        coop100 serve --port 8001
    """
    if not (root / settings.DESCRIPTOR).is_file():
        raise click.UsageError(f"{root}: holds no {settings.DESCRIPTOR}; run coop100 build first")
    from coop100.site.build import build_site, datasette_command  # only serving needs the site

    try:
        # Under the build lock, so no build swaps files between the check and the copy.
        with build_lock(root):
            _finish_publish(root)
            _check_whole(root)
            site = build_site(root, rebuild=rebuild)
    except BuildDirError as exc:
        _fail(exc.problems, "nothing was served")
    except DatabaseError as exc:
        _fail([str(exc)], "the package could not be loaded into SQLite")
    command = datasette_command(site, host, port)
    click.echo(f"coop100: serving {site.db_path} read-only at http://{host}:{port}/")
    sys.stdout.flush()
    # exec, so the server is this process: signals and the pid reach Datasette itself.
    os.execv(command[0], command)
