"""Publishing never costs data: atomic swaps, kill-safety, foreign files, drift, reproducibility."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from coop100 import settings
from coop100.cli import cli
from coop100.pipeline import build
from coop100.settings import DB_NAME
from coop100.write.archive import ZIP_NAME
from coop100.write.package import PackageError, build_lock, published_files
from tests.conftest import RECORDS
from tests.site_fixtures import free_port

# End to end (real processes, servers, browsers): `make test-all` and CI run it.
pytestmark = pytest.mark.slow

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
    moved = f"finished an interrupted build: moved {len(published_files(project))} files into place"
    assert (moved in result.stdout) is finished
    assert _digests(project) == new_package
    result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert _leftovers(project) == []


def test_a_build_that_fails_its_check_publishes_nothing(project: Path) -> None:
    old = _digests(project)
    _edit_records(project)
    with pytest.raises(PackageError) as caught:
        build(project, check=lambda staged: ["rejected"])
    assert caught.value.problems == ["rejected"]
    assert _digests(project) == old
    assert _leftovers(project) == []


def test_a_build_whose_check_raises_publishes_nothing(project: Path) -> None:
    old = _digests(project)
    _edit_records(project)

    def explode(staged: Path) -> list[str]:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        build(project, check=explode)
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


def test_a_journal_without_checksums_is_not_finished(project: Path) -> None:
    (project / settings.PUBLISH_JOURNAL).write_text(
        '{"staging": ".tmp-old", "files": ["datapackage.json"]}'
    )
    result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.stderr.splitlines() == [
        f"{settings.PUBLISH_JOURNAL}: was written by an older coop100 and holds no checksums "
        "to finish with; restore the published files with git, delete it and run "
        "`coop100 build`",
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
        # The reworded definition is the codebook's example of topics.definition.
        f"{settings.CODEBOOK_FILE}: {tail}",
        # The catalogue gives every file's checksum.
        f"catalog.ttl: {tail}",
        f"catalog.jsonld: {tail}",
        f"build/csv/topics.csv: {tail}",
        f"build/parquet/topics.parquet: {tail}",
        "6 problem(s): the package is not valid",
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


# -- recovery: never roll forward onto files the build did not write -----------------

REFUSED = (
    f"{settings.PUBLISH_JOURNAL}: a build was interrupted while publishing, and finishing it "
    "now would mix its files with the ones above; nothing was changed. Delete "
    f"{settings.PUBLISH_JOURNAL} and run `coop100 build` to publish what records/ builds"
)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=coop100", "-c", "user.email=coop100@localhost", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _serve(root: Path, timeout: float = 60) -> tuple[subprocess.Popen[bytes], str]:
    """Start `coop100 serve`; return it and its base URL once it answers (or has exited)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "coop100", "serve", "--root", str(root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/-/versions.json", timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    return process, base


def _refusals(command: str, root: Path) -> tuple[int, list[str]]:
    """Run a command that must refuse; return its exit code and error lines."""
    if command == "serve":
        process, _ = _serve(root)
        try:
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
        return process.returncode, stderr.decode().splitlines()
    result = CliRunner().invoke(cli, [command, "--root", str(root)])
    return result.exit_code, result.stderr.splitlines()


OUTCOME = {
    "validate": "the package is not valid",
    "build": "nothing was published",
    "serve": "nothing was served",
}


@pytest.mark.parametrize("command", sorted(OUTCOME))
def test_a_build_killed_mid_swap_is_not_finished_over_files_git_restored(
    project: Path, command: str
) -> None:
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "published")
    old = _digests(project)
    _edit_records(project)
    _kill_build_at(project, "swapping")
    _git(project, "checkout", "--", ".")
    assert _digests(project) == old
    # datapackage.json, the codebook (whose example of topics.definition changed) and
    # the catalogue (which holds their checksums) were swapped before the kill and
    # restored by git; finishing the swap would publish new topics files beside the
    # old descriptor.
    exit_code, lines = _refusals(command, project)
    restored = (
        settings.DESCRIPTOR,
        settings.CODEBOOK_FILE,
        settings.CATALOG_TURTLE,
        settings.CATALOG_JSONLD,
    )
    assert lines[-6:] == [
        *(
            f"{name}: is not the file the interrupted build published, and no "
            "staged copy is left to finish with"
            for name in restored
        ),
        REFUSED,
        "5 problem(s): " + OUTCOME[command],
    ]
    assert exit_code == 1
    assert _digests(project) == old
    assert (project / settings.PUBLISH_JOURNAL).exists()
    # What the message says to do publishes one whole package.
    (project / settings.PUBLISH_JOURNAL).unlink()
    result = CliRunner().invoke(cli, ["build", "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert _digests(project) == old  # git restored the records too
    assert _leftovers(project) == []


def test_a_file_edited_after_a_kill_is_not_overwritten(project: Path) -> None:
    _edit_records(project)
    _kill_build_at(project, "committed")
    edited = project / "build/csv/topics.csv"
    edited.write_bytes(edited.read_bytes() + b"mine\r\n")
    mine = _digests(project)
    for command in ("validate", "build"):
        exit_code, lines = _refusals(command, project)
        assert lines[:2] == [
            "build/csv/topics.csv: changed since the build was interrupted (neither the file "
            "it replaces nor the one it publishes)",
            REFUSED,
        ]
        assert exit_code == 1
        assert _digests(project) == mine


def test_serve_finishes_an_interrupted_build_and_serves_a_whole_package(
    project: Path, new_package: dict[str, str]
) -> None:
    _edit_records(project)
    _kill_build_at(project, "swapping")
    process, base = _serve(project)
    try:
        with urllib.request.urlopen(f"{base}/data/datapackage.json", timeout=10) as response:
            descriptor = json.loads(response.read())
        for resource in descriptor["resources"]:
            if resource["format"] == "csv":
                with urllib.request.urlopen(f"{base}/data/{resource['path']}", timeout=10) as r:
                    assert f"sha256:{hashlib.sha256(r.read()).hexdigest()}" == resource["hash"]
    finally:
        process.terminate()
        stdout, _ = process.communicate(timeout=30)
    moved = f"finished an interrupted build: moved {len(new_package)} files into place"
    assert moved.encode() in stdout
    assert _digests(project) == new_package


def test_serve_refuses_a_package_whose_files_differ_from_its_descriptor(project: Path) -> None:
    path = project / "build/csv/topics.csv"
    path.write_bytes(path.read_bytes() + b"\r\n")
    exit_code, lines = _refusals("serve", project)
    size = path.stat().st_size
    assert lines == [
        f"build/csv/topics.csv: is {size} bytes, datapackage.json says {size - 2}; "
        "run `coop100 build`",
        "build/csv/topics.csv: sha256 differs from datapackage.json; run `coop100 build`",
        "2 problem(s): nothing was served",
    ]
    assert exit_code == 1


@pytest.mark.parametrize(
    ("descriptor", "problem"),
    [
        (
            "{",
            "cannot be read (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
        (
            '{"resources": [{"name": "x"}]}',
            "is not a package coop100 published; run `coop100 build`",
        ),
    ],
)
def test_serve_refuses_a_descriptor_it_cannot_check(
    project: Path, descriptor: str, problem: str
) -> None:
    (project / settings.DESCRIPTOR).write_text(descriptor)
    exit_code, lines = _refusals("serve", project)
    assert lines == [f"{settings.DESCRIPTOR}: {problem}", "1 problem(s): nothing was served"]
    assert exit_code == 1
