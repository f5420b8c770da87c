"""Publishing never costs data: atomic swaps, kill-safety, foreign files, drift, reproducibility."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from coop100 import settings
from coop100.archive import ZIP_NAME
from coop100.cli import cli
from coop100.database import DB_NAME
from coop100.package import PackageError, build_lock, build_package, published_files
from coop100.pipeline import build

from .conftest import RECORDS

# Checkpoints in package.py, in the order a build passes them. Before the journal
# is written ("committed") a kill must leave the old package; from then on the
# next build or validate must finish publishing the new one.
BEFORE_COMMIT = ["writing", "staged", "checked"]
AFTER_COMMIT = ["committed", "swapping", "swapped", "published"]
NEW_DEFINITION = "Cooperative enterprises and the worldwide cooperative movement."


def _digests(root: Path) -> dict[str, str]:
    return {
        rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in published_files(root)
    }


def _leftovers(root: Path) -> list[str]:
    build = root / "build"
    return sorted(
        p.name
        for p in build.iterdir()
        if p.name.startswith(settings.STAGING_PREFIX) or p.name.endswith(".json")
    )


def _edit_records(root: Path) -> None:
    """A valid correction: one topic's definition reworded."""
    path = root / "records/topics.yaml"
    text = path.read_text(encoding="utf-8")
    old = "definition: Cooperative enterprises and the cooperative movement."
    assert text.count(old) == 1
    path.write_text(text.replace(old, f"definition: {NEW_DEFINITION}"), encoding="utf-8")


@pytest.fixture(scope="module")
def new_package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Digests of the package the edited records build."""
    root = tmp_path_factory.mktemp("new")
    shutil.copytree(RECORDS, root / "records")
    _edit_records(root)
    build(root)
    return _digests(root)


@pytest.fixture
def project(fresh_build: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(fresh_build, root)
    return root


def _kill_build_at(root: Path, point: str) -> None:
    env = {**os.environ, settings.PAUSE_ENV: point}
    process = subprocess.Popen(
        [sys.executable, "-m", "coop100", "build", "--root", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert line == f"coop100: paused at {point}\n"
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point", BEFORE_COMMIT)
def test_a_build_killed_before_its_commit_point_leaves_the_old_package(
    project: Path, point: str, new_package: dict[str, str]
) -> None:
    old = _digests(project)
    _edit_records(project)
    _kill_build_at(project, point)
    assert _digests(project) == old
    # The dead build's staging folder is swept by the next build, which publishes.
    result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert _digests(project) == new_package
    assert _leftovers(project) == []


@pytest.mark.parametrize("point", AFTER_COMMIT)
def test_a_build_killed_after_its_commit_point_is_finished_by_validate(
    project: Path, point: str, new_package: dict[str, str]
) -> None:
    old = _digests(project)
    _edit_records(project)
    _kill_build_at(project, point)
    # Mid-swap each file is whole: either the old one or the new one.
    for rel, digest in _digests(project).items():
        assert digest in (old[rel], new_package[rel]), rel
    result = CliRunner().invoke(cli, ["validate", "--root", str(project)])
    assert result.exit_code == 0, result.output
    finished = point != "published"  # by then the journal is gone: nothing to finish
    assert ("finished an interrupted build: moved 31 files into place" in result.stdout) is finished
    assert _digests(project) == new_package
    result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert _leftovers(project) == []


def test_a_build_that_fails_its_check_publishes_nothing(project: Path) -> None:
    old = _digests(project)
    _edit_records(project)
    with pytest.raises(PackageError) as caught:
        build_package(project / "records", project, check=lambda staged: ["rejected"])
    assert caught.value.problems == ["rejected"]
    assert _digests(project) == old
    assert _leftovers(project) == []


def test_a_build_whose_check_raises_publishes_nothing(project: Path) -> None:
    old = _digests(project)
    _edit_records(project)

    def explode(staged: Path) -> list[str]:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        build_package(project / "records", project, check=explode)
    assert _digests(project) == old
    assert _leftovers(project) == []


def test_a_broken_journal_is_reported_not_guessed(project: Path) -> None:
    (project / settings.PUBLISH_JOURNAL).write_text('{"staging": "../../etc", "files": []}')
    result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.stderr.splitlines() == [
        f"{settings.PUBLISH_JOURNAL}: names files no build writes; restore the published "
        "files with git, delete it and run `coop100 build`",
        "1 problem(s): nothing was published",
    ]
    assert result.exit_code == 1


def test_the_build_refuses_files_it_did_not_write(project: Path) -> None:
    (project / "build/notes.txt").write_text("mine")
    (project / "build/csv/old-people.csv").write_text("mine too")
    # What the site's steps write is the build's own.
    (project / "build/coop100.db").write_bytes(b"")
    (project / "build/coop100.zip").write_bytes(b"")
    (project / "build/screenshots").mkdir()
    (project / "build/screenshots/home.png").write_bytes(b"")
    old = _digests(project)
    _edit_records(project)
    result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.stderr.splitlines() == [
        "build/csv/old-people.csv: not written by coop100 build; move it out of build/",
        "build/notes.txt: not written by coop100 build; move it out of build/",
        "2 problem(s): nothing was published",
    ]
    assert result.exit_code == 1
    assert _digests(project) == old
    assert (project / "build/notes.txt").read_text() == "mine"


def test_two_builds_never_run_at_once(project: Path) -> None:
    with build_lock(project):
        result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.stderr.splitlines() == [
        f"{settings.BUILD_LOCK}: another coop100 build is running; wait for it",
        "1 problem(s): nothing was published",
    ]
    assert result.exit_code == 1


def test_validate_reports_drift_between_records_and_published_files(project: Path) -> None:
    _edit_records(project)
    result = CliRunner().invoke(cli, ["validate", "--root", str(project)])
    tail = "differs from what records/ builds; run `coop100 build` and commit it"
    assert result.stderr.splitlines() == [
        f"datapackage.json: {tail}",
        f"build/csv/topics.csv: {tail}",
        f"build/parquet/topics.parquet: {tail}",
        "3 problem(s): the package is not valid",
    ]
    assert result.exit_code == 1


def test_validate_reports_a_file_whose_bytes_disagree_with_datapackage_json(
    project: Path,
) -> None:
    path = project / "build/csv/topics.csv"
    path.write_bytes(path.read_bytes() + b"\r\n")
    result = CliRunner().invoke(cli, ["validate", "--root", str(project)])
    lines = result.stderr.splitlines()
    size = path.stat().st_size
    assert lines[:3] == [
        "build/csv/topics.csv: differs from what records/ builds; "
        "run `coop100 build` and commit it",
        f"build/csv/topics.csv: is {size} bytes, datapackage.json says {size - 2}; "
        "run `coop100 build`",
        "build/csv/topics.csv: sha256 differs from datapackage.json; run `coop100 build`",
    ]
    assert result.exit_code == 1


@pytest.mark.parametrize(
    "args", [["build", "--root", "/nonexistent/coop100"], ["validate", "--bogus"], ["nothing"]]
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def _database_content(db_path: Path) -> list[tuple[object, ...]]:
    """The schema and every row of every table, in a stable order (not the file's bytes)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        schema = db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        content: list[tuple[object, ...]] = [("schema", *row) for row in schema]
        for (table,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall():
            width = len(db.execute(f'SELECT * FROM "{table}" LIMIT 0').description)
            order = ", ".join(str(i) for i in range(1, width + 1))
            rows = db.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
            content += [(table, *row) for row in rows]
    db.close()
    return content


def test_builds_are_reproducible_across_folders_hash_seeds_and_time_zones(
    tmp_path: Path,
) -> None:
    digests, zips, databases = [], [], []
    for name, seed, zone in (("a", "1", "UTC"), ("b/deeper", "4242", "Pacific/Kiritimati")):
        root = tmp_path / name
        shutil.copytree(RECORDS, root / "records")
        env = {**os.environ, "PYTHONHASHSEED": seed, "TZ": zone}
        subprocess.run(
            [sys.executable, "-m", "coop100", "build", "--root", "."],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
        digests.append(_digests(root))
        zips.append((root / "build" / ZIP_NAME).read_bytes())
        databases.append(_database_content(root / "build" / DB_NAME))
    assert digests[0] == digests[1]
    assert zips[0] == zips[1]
    assert len(databases[0]) > 100  # tables, FTS shadow tables, views and their rows
    assert databases[0] == databases[1]
