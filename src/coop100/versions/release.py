"""Versions and release notes: the Data Package Version recipe applied to a diff.

The releases live in one file, records/releases.json, newest first: each with
its version, its date and its notes (Markdown). The first entry is the
package's version and release date: datapackage.json, the Parquet metadata,
CHANGES.md, CITATION.cff and the site all take them from there.

`coop100 release` diffs the records against the last release, works out the
smallest bump the recipe allows (https://datapackage.org/recipes/data-package-version/),
refuses a version that understates it, and adds the release to that file.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coop100 import settings
from coop100.problems import Problem, RecordsError

if TYPE_CHECKING:
    from coop100.rules.models import About
    from coop100.versions.diff import PackageDiff, SchemaChange

_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TAG_PREFIX = "v"


class ReleaseError(Exception):
    """A release cannot be made or read; `problems` says why and what to do."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Bump(enum.IntEnum):
    """A semantic version's parts, in the order of what they promise."""

    PATCH = 1
    MINOR = 2
    MAJOR = 3

    @property
    def word(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Release:
    """One published version of the package."""

    version: str
    released: str  # YYYY-MM-DD
    notes: str  # Markdown
    bump: str | None = None  # patch, minor or major; None for the first release

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "released": self.released,
            "bump": self.bump,
            "notes": self.notes,
        }


# -- the one place: records/releases.json --------------------------------------------------------


def releases_path(records_dir: Path) -> Path:
    return records_dir / Path(settings.RELEASES_FILE).name


def read_releases(records_dir: Path) -> list[Release]:
    """Every release, newest first.

    Raises:
        RecordsError: the file is missing or malformed (the message names the entry).
    """
    path = releases_path(records_dir)
    shown = f"{records_dir.name}/{path.name}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _problems(
            [f"{shown}: is missing; restore it with git (it holds the package's versions)"]
        ) from None
    except (OSError, ValueError) as exc:
        raise _problems([f"{shown}: cannot be read as JSON ({exc})"]) from None
    entries = data.get("releases") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise _problems([f"{shown}: must be an object with a non-empty list `releases`"])
    releases, problems = [], []
    for number, entry in enumerate(entries, start=1):
        where = f"{shown}: release {number}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        version, released, notes = entry.get("version"), entry.get("released"), entry.get("notes")
        if not isinstance(version, str) or not _VERSION.match(version):
            problems.append(f"{where}: version {version!r} is not MAJOR.MINOR.PATCH")
        if not isinstance(released, str) or not _is_date(released):
            problems.append(f"{where}: released {released!r} is not a date YYYY-MM-DD")
        if not isinstance(notes, str):
            problems.append(f"{where}: notes must be text (Markdown)")
        bump = entry.get("bump")
        if bump not in (None, *(b.word for b in Bump)):
            problems.append(f"{where}: bump {bump!r} is not patch, minor or major")
        if not problems:
            releases.append(Release(str(version), str(released), str(notes), bump))
    for newer, older in zip(releases, releases[1:], strict=False):
        if parse_version(newer.version) <= parse_version(older.version):
            problems.append(f"{shown}: {newer.version} is listed before {older.version}")
        if newer.released < older.released:
            problems.append(f"{shown}: {newer.version} is dated before {older.version}")
    if problems:
        raise _problems(problems)
    return releases


def _problems(messages: list[str]) -> RecordsError:
    """The messages ("<file>: <what>") as records problems, so build and validate list them."""
    found = []
    for text in messages:
        path, _, message = text.partition(": ")
        found.append(Problem(path, message=message))
    return RecordsError(found)


def write_releases(records_dir: Path, releases: list[Release]) -> None:
    data = {"releases": [r.as_dict() for r in releases]}
    releases_path(records_dir).write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def changes_markdown(releases: list[Release], about: About) -> str:
    """CHANGES.md: every release's notes, newest first."""
    lines = [
        f"# Changes to {about.name}",
        "",
        "Each version follows the Data Package Version recipe"
        " (<https://datapackage.org/recipes/data-package-version/>): MAJOR when a field is"
        " renamed, added, removed, reordered or retyped, or referenced data is removed;"
        " MINOR when tables or rows are added; PATCH when data errors or metadata are fixed."
        " Newest first.",
    ]
    for release in releases:
        lines += ["", release_heading(release), "", release.notes.strip()]
    return "\n".join(lines) + "\n"


def release_heading(release: Release) -> str:
    return f"## {release.version} ({release.released})"


def latest_notes(changes: str) -> tuple[str, str]:
    """The heading and the notes of the newest release in a CHANGES.md text."""
    sections = re.split(r"(?m)^(## .*)$", changes)
    if len(sections) < 3:
        return "", ""
    body = sections[2]
    return sections[1].removeprefix("## ").strip(), body.strip()


# -- the recipe ----------------------------------------------------------


def parse_version(text: str) -> tuple[int, int, int]:
    match = _VERSION.match(text or "")
    if not match:
        raise ReleaseError([f"version {text!r} is not MAJOR.MINOR.PATCH (e.g. 1.0.1)"])
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def next_version(version: str, bump: Bump) -> str:
    """The smallest version after `version` that makes a `bump`."""
    major, minor, patch = parse_version(version)
    if bump is Bump.MAJOR:
        return f"{major + 1}.0.0"
    if bump is Bump.MINOR:
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def bump_between(old: str, new: str) -> Bump | None:
    """What going from old to new promises; None when new is not after old."""
    a, b = parse_version(old), parse_version(new)
    if b <= a:
        return None
    if b[0] > a[0]:
        return Bump.MAJOR
    if b[1] > a[1]:
        return Bump.MINOR
    return Bump.PATCH


@dataclass
class Reasons:
    """Why a diff needs the bump it needs: (bump, what changed) pairs."""

    items: list[tuple[Bump, str]] = field(default_factory=list)

    def add(self, bump: Bump, text: str) -> None:
        self.items.append((bump, text))

    @property
    def bump(self) -> Bump | None:
        return max((b for b, _ in self.items), default=None)

    def __iter__(self) -> Iterator[tuple[Bump, str]]:
        return iter(sorted(self.items, key=lambda item: -item[0]))


_MAJOR_SCHEMA = {
    "field_added": "field `{field}` added",
    "field_removed": "field `{field}` removed",
    "field_renamed": "field `{old}` renamed `{new}`",
    "fields_reordered": "fields reordered",
    "field_retyped": "field `{field}` retyped ({old} → {new})",
    "primary_key_changed": "primary key changed",
}


def required_bump(diff: PackageDiff) -> Reasons:
    """The recipe's verdict on each change of the diff (the largest is the bump needed)."""
    reasons = Reasons()
    for name in diff.tables_removed:
        reasons.add(Bump.MAJOR, f"table `{name}` removed")
    for name in diff.resources_removed:
        reasons.add(Bump.MAJOR, f"resource `{name}` removed")
    for name in diff.tables_added:
        reasons.add(Bump.MINOR, f"table `{name}` added")
    for name in diff.resources_added:
        # Not a table: release notes, or the tables' data in another form.
        reasons.add(Bump.PATCH, f"resource `{name}` added (no new data)")
    for name in diff.resources_changed:
        if name not in settings.DERIVED_DOCUMENTS:  # the tables' changes say why
            reasons.add(Bump.PATCH, f"resource `{name}` changed")
    for prop, _, _ in diff.metadata_changes:
        if prop == "name":
            reasons.add(Bump.MAJOR, "package renamed")
        else:
            reasons.add(Bump.PATCH, f"metadata `{prop}` changed")
    for table in diff.changed_tables:
        for change in table.schema_changes:
            bump, text = _schema_bump(change)
            reasons.add(bump, f"`{table.name}`: {text}")
        if table.removed_count:
            if table.referenced:
                reasons.add(
                    Bump.MAJOR,
                    f"`{table.name}`: {table.removed_count:,} row(s) removed from a table"
                    " other tables refer to",
                )
            else:
                reasons.add(
                    Bump.PATCH, f"`{table.name}`: {table.removed_count:,} row(s) removed (fix)"
                )
        if table.added_count:
            reasons.add(Bump.MINOR, f"`{table.name}`: {table.added_count:,} row(s) added")
        if table.changed:
            reasons.add(Bump.PATCH, f"`{table.name}`: {len(table.changed):,} row(s) corrected")
    return reasons


def _schema_bump(change: SchemaChange) -> tuple[Bump, str]:
    if change.kind in _MAJOR_SCHEMA:
        text = _MAJOR_SCHEMA[change.kind].format(field=change.field, old=change.old, new=change.new)
        return Bump.MAJOR, text
    if change.kind == "constraints_changed":
        if _tighter(change.old or {}, change.new or {}):
            return Bump.MAJOR, f"constraints of `{change.field}` made more restrictive"
        return Bump.MINOR, f"constraints of `{change.field}` relaxed"
    if change.kind == "foreign_keys_changed":
        return Bump.MINOR, "references to other tables changed"
    return Bump.PATCH, f"description of `{change.field}` changed"


_UPPER = frozenset({"maxLength", "maximum", "exclusiveMaximum", "maxItems"})
_LOWER = frozenset({"minLength", "minimum", "exclusiveMinimum", "minItems"})
_FLAGS = frozenset({"required", "unique"})


def _tighter(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether new constraints refuse a value the old ones allowed (when in doubt: yes)."""
    for key in set(old) | set(new):
        before, after = old.get(key), new.get(key)
        if before == after or after is None and key not in _FLAGS:
            continue
        if key in _FLAGS:
            if after and not before:
                return True
        elif before is None:
            return True
        elif key in _UPPER and isinstance(before, int | float) and isinstance(after, int | float):
            if after < before:
                return True
        elif key in _LOWER and isinstance(before, int | float) and isinstance(after, int | float):
            if after > before:
                return True
        elif key == "enum" and isinstance(before, list) and isinstance(after, list):
            if not set(map(str, before)) <= set(map(str, after)):
                return True
        else:
            return True
    return False


# -- the last release ----------------------------------------------------------


def last_release_tag(root: Path) -> str | None:
    """The newest tag named v<version> in the project's git history."""
    result = str(_git(root, "tag", "--list", f"{TAG_PREFIX}*", "--sort=-v:refname"))
    for tag in result.splitlines():
        if _VERSION.match(tag.removeprefix(TAG_PREFIX)):
            return tag
    return None


def _git(root: Path, *args: str, binary: bool = False) -> Any:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, check=True, timeout=120
        )
    except FileNotFoundError:
        raise ReleaseError(
            ["git: not installed; give the last release as a path, zip or URL"]
        ) from None
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode("utf-8", "replace").strip()
        raise ReleaseError([f"git {' '.join(args)}: {message}"]) from None
    return done.stdout if binary else done.stdout.decode("utf-8")


def export_git_package(root: Path, ref: str, target: Path) -> Path:
    """Write the package published at git ref (descriptor, schemas, files) under target."""
    descriptor_bytes = _git(root, "show", f"{ref}:./{settings.DESCRIPTOR}", binary=True)
    (target / settings.DESCRIPTOR).write_bytes(descriptor_bytes)
    descriptor = json.loads(descriptor_bytes)
    for resource in descriptor.get("resources", []):
        for rel in (resource.get("path"), resource.get("schema")):
            if isinstance(rel, str) and not (target / rel).exists():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                (target / rel).write_bytes(_git(root, "show", f"{ref}:./{rel}", binary=True))
    return target


# -- making a release ----------------------------------------------------------


@dataclass
class ReleasePlan:
    """What `coop100 release` will write: the new release and why its version is what it is."""

    since: str
    previous: str
    release: Release
    reasons: Reasons
    diff: PackageDiff


def plan_release(
    root: Path,
    candidate: Path,
    since: str | None = None,
    version: str | None = None,
    date: str | None = None,
) -> ReleasePlan:
    """Compare the package built from the records (at candidate) with the last release.

    Args:
        root: the project folder (its git history holds the release tags).
        candidate: a package freshly built from the records.
        since: the last release: a git ref, or a package's folder, zip or URL;
            by default the newest v<version> tag.
        version: the version to release; by default the smallest the changes allow.
        date: the release date (YYYY-MM-DD); by default today (UTC).
    Raises:
        ReleaseError: nothing changed, the version understates the changes, or
            the last release cannot be read.
    """
    releases = read_releases(root / settings.RECORDS_DIR)
    with tempfile.TemporaryDirectory(prefix="coop100-release-") as work:
        if since is None:
            since = last_release_tag(root)
            if since is None:
                raise ReleaseError(
                    [
                        f"no {TAG_PREFIX}<version> tag in the git history: give the last "
                        "release with --since (a git ref, or a package's folder, zip or URL)"
                    ]
                )
        old: str | Path = since
        if not (since.startswith(("http://", "https://")) or Path(since).exists()):
            old = export_git_package(root, since, Path(work))
        # The build reads releases from here too: import the diff only to release.
        from coop100.versions.diff import DiffError, diff_packages

        try:
            diff = diff_packages(old, candidate)
        except DiffError as exc:
            raise ReleaseError([str(exc)]) from None
    # The release notes and the citation are this release's own output, not changes.
    for names in (diff.resources_added, diff.resources_changed):
        names[:] = [n for n in names if n not in settings.RELEASE_DOCUMENTS]
    previous = diff.old_version or ""
    parse_version(previous)
    reasons = required_bump(diff)
    needed = reasons.bump
    if needed is None:
        raise ReleaseError(
            [f"nothing changed since {since} ({previous}): there is nothing to release"]
        )
    smallest = next_version(previous, needed)
    chosen = version or smallest
    given = bump_between(previous, chosen)
    if given is None:
        raise ReleaseError([f"version {chosen} is not after the last release, {previous}"])
    if given < needed:
        why = "; ".join(text for bump, text in reasons if bump == needed)
        raise ReleaseError(
            [
                f"version {chosen} is a {given.word} release, but the changes since {previous} "
                f"need a {needed.word} one ({why}): release {smallest} or later"
            ]
        )
    if chosen in {r.version for r in releases}:
        raise ReleaseError([f"version {chosen} is already in {settings.RELEASES_FILE}"])
    released = date or dt.datetime.now(dt.UTC).date().isoformat()
    if not _is_date(released) or released < releases[0].released:
        raise ReleaseError(
            [f"date {released!r} is not a date YYYY-MM-DD on or after {releases[0].released}"]
        )
    diff.new_version = chosen
    release = Release(chosen, released, release_notes(diff, reasons, given), given.word)
    return ReleasePlan(since, previous, release, reasons, diff)


def release_notes(diff: PackageDiff, reasons: Reasons, bump: Bump) -> str:
    """A release's notes: why its version, then the diff (rows capped, headings nested)."""
    lines = [f"A {bump.word} release. What changed, and the bump each change needs:", ""]
    lines += [f"- {text} ({needed.word})" for needed, text in reasons]
    lines += ["", diff.to_markdown(max_rows=settings.RELEASE_NOTES_MAX_ROWS, level=3).strip()]
    return "\n".join(lines)


def add_release(root: Path, plan: ReleasePlan) -> None:
    """Put the planned release first in records/releases.json."""
    records_dir = root / settings.RECORDS_DIR
    write_releases(records_dir, [plan.release, *read_releases(records_dir)])
