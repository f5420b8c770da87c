"""Versions by the Data Package Version recipe: the bump each real edit needs, and
`coop100 release` from a tagged release to the next, refusing understated versions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from coop100 import settings
from coop100.cli import cli
from coop100.pipeline import build
from coop100.read.records import RecordsError, read_about
from coop100.versions.diff import diff_packages
from coop100.versions.release import (
    Bump,
    bump_between,
    changes_markdown,
    next_version,
    read_releases,
    required_bump,
)
from coop100.write.package import published_files
from tests.conftest import ROOT
from tests.unit.versions.test_diff import NEW_STATEMENT, _add_field

RETITLE = ("role: Cooperatives Unit Manager\n", "role: Head of the Cooperatives Unit\n")


def _edit(root: Path, path: str, old: str, new: str) -> None:
    target = root / path
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new), encoding="utf-8")


def _project(fresh_build: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(fresh_build / "records", root / "records")
    build(root)
    return root


def test_versions() -> None:
    assert next_version("1.0.0", Bump.PATCH) == "1.0.1"
    assert next_version("1.2.3", Bump.MINOR) == "1.3.0"
    assert next_version("1.2.3", Bump.MAJOR) == "2.0.0"
    assert bump_between("1.0.0", "1.0.1") is Bump.PATCH
    assert bump_between("1.0.9", "1.1.0") is Bump.MINOR
    assert bump_between("1.9.9", "2.0.0") is Bump.MAJOR
    assert bump_between("1.0.1", "1.0.1") is None
    assert bump_between("1.1.0", "1.0.9") is None


def test_each_edit_needs_its_bump(fresh_build: Path, tmp_path: Path) -> None:
    retitled = _project(fresh_build, tmp_path / "a")
    _edit(retitled, "records/people.yaml", *RETITLE)
    build(retitled)
    reasons = required_bump(diff_packages(fresh_build, retitled))
    assert reasons.bump is Bump.PATCH
    assert list(reasons) == [(Bump.PATCH, "`affiliations`: 1 row(s) corrected")]

    added = _project(fresh_build, tmp_path / "b")
    statements = added / "records" / "events" / "ilo-coop-100-launch-webinar.yaml"
    statements.write_text(
        statements.read_text(encoding="utf-8").replace(
            "\nstatement_topics:\n", NEW_STATEMENT + "\nstatement_topics:\n"
        ),
        "utf-8",
    )
    build(added)
    reasons = required_bump(diff_packages(fresh_build, added))
    assert reasons.bump is Bump.MINOR
    assert list(reasons) == [(Bump.MINOR, "`statements`: 1 row(s) added")]

    # The statement removed again: statement_topics refers to statements.
    reasons = required_bump(diff_packages(added, fresh_build))
    assert reasons.bump is Bump.MAJOR

    widened = tmp_path / "c"
    shutil.copytree(fresh_build, widened, ignore=shutil.ignore_patterns("records"))
    _add_field(widened, "people", "orcid", [None] * 7)
    reasons = required_bump(diff_packages(fresh_build, widened))
    assert reasons.bump is Bump.MAJOR
    assert (Bump.MAJOR, "`people`: field `orcid` added") in list(reasons)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_release_from_a_tag(fresh_build: Path, tmp_path: Path) -> None:
    root = _project(fresh_build, tmp_path)
    current = read_releases(root / "records")[0].version
    patch, minor = next_version(current, Bump.PATCH), next_version(current, Bump.MINOR)
    _git(root, "init", "-q")
    _git(root, "add", "records", *published_files(root))
    _git(root, "commit", "-qm", current)
    _git(root, "tag", f"v{current}")
    runner = CliRunner()

    nothing = runner.invoke(cli, ["release", "--root", str(root)])
    assert nothing.exit_code == 1
    assert f"nothing changed since v{current} ({current}): there is nothing to release" in (
        nothing.output
    )

    statements = root / "records" / "events" / "ilo-coop-100-launch-webinar.yaml"
    statements.write_text(
        statements.read_text(encoding="utf-8").replace(
            "\nstatement_topics:\n", NEW_STATEMENT + "\nstatement_topics:\n"
        ),
        "utf-8",
    )
    _edit(root, "records/people.yaml", *RETITLE)
    understated = runner.invoke(cli, ["release", "--root", str(root), "--version", patch])
    assert understated.exit_code == 1
    assert (
        f"version {patch} is a patch release, but the changes since {current} need a minor one "
        f"(`statements`: 1 row(s) added): release {minor} or later"
    ) in understated.output
    assert read_releases(root / "records")[0].version == current  # nothing written

    done = runner.invoke(cli, ["release", "--root", str(root), "--date", "2027-01-05"])
    assert done.exit_code == 0, done.output
    assert f"{current} -> {minor} (minor), since v{current}" in done.output
    latest = read_releases(root / "records")[0]
    assert (latest.version, latest.released, latest.bump) == (minor, "2027-01-05", "minor")
    descriptor = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    assert descriptor["version"] == minor
    assert descriptor["coop100:released"] == "2027-01-05"
    changes = (root / settings.CHANGES_FILE).read_text(encoding="utf-8")
    assert changes.index(f"## {minor} (2027-01-05)") < changes.index(f"## {current} (")
    assert "- `statements`: 1 row(s) added (minor)" in changes
    assert "| simel-esim-s2 | `role` | Cooperatives Unit Manager |" in changes
    assert "esim-closing" in changes
    notes = changes.split(f"## {current} (")[0]
    assert "Resources added" not in notes and "resource `" not in notes  # its own files
    # An earlier or equal version is refused.
    again = runner.invoke(cli, ["release", "--root", str(root), "--version", minor])
    assert again.exit_code == 1


def test_releases_file_problems(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    with pytest.raises(RecordsError, match="records/releases.json: is missing"):
        read_releases(records)
    (records / "releases.json").write_text(
        json.dumps(
            {
                "releases": [
                    {"version": "1.0", "released": "2026-13-01", "notes": "x"},
                ]
            }
        )
    )
    with pytest.raises(RecordsError) as caught:
        read_releases(records)
    assert [str(p) for p in caught.value.problems] == [
        "records/releases.json: release 1: released '2026-13-01' is not a date YYYY-MM-DD",
        "records/releases.json: release 1: version '1.0' is not MAJOR.MINOR.PATCH",
    ]


def test_published_changes_are_the_releases() -> None:
    releases = read_releases(ROOT / "records")
    published = (ROOT / settings.CHANGES_FILE).read_text(encoding="utf-8")
    assert published == changes_markdown(releases, read_about(ROOT / "records"))
    descriptor = json.loads((ROOT / "datapackage.json").read_text(encoding="utf-8"))
    assert descriptor["version"] == releases[0].version
    assert descriptor["coop100:released"] == releases[0].released
