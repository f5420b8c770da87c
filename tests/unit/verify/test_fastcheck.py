"""The columnar check of a package (coop100.verify.fastcheck) finds what frictionless finds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from coop100 import settings
from coop100.verify import fastcheck
from coop100.write.digest import file_digest

# -- the published package: fastcheck finds what frictionless finds ------------------

SEEDED = [
    # (resource, row number as frictionless counts it, field, new cell, error type)
    ("participations", 3, "speaking_order", "three", "type-error"),
    ("events", 2, "start_date", "2020-02-30", "type-error"),
    ("statements", 4, "type", "rant", "constraint-error"),
    ("people", 3, "name", "", "constraint-error"),
    ("statements", 5, "statement_id", "<copy row 4>", "primary-key"),
    ("statements", 6, "person_id", "nobody", "foreign-key"),
    ("statement_topics", 2, "topic_id", "astrology", "foreign-key"),
]


def _seed_package(source: Path, target: Path) -> None:
    """A copy of a built package with SEEDED written into its CSVs, checksums updated."""
    for name in ("datapackage.json", "schemas", "build", *settings.ROOT_DOCUMENTS):
        src = source / name
        if src.is_dir():
            import shutil

            shutil.copytree(src, target / name)
        else:
            (target / name).write_bytes(src.read_bytes())
    descriptor = json.loads((target / "datapackage.json").read_text())
    for resource, row, field, value, _ in SEEDED:
        path = target / "build" / "csv" / f"{resource}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        column = rows[0].index(field)
        if value == "<copy row 4>":
            value = rows[4 - 1][column]
        rows[row - 1][column] = value
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\r\n").writerows(rows)
    for entry in descriptor["resources"]:
        if entry.get("format") == "csv":
            size, sha = file_digest(target / entry["path"])
            entry |= {"bytes": size, "hash": f"sha256:{sha}"}
    (target / "datapackage.json").write_text(json.dumps(descriptor, indent=2))


def _frictionless_findings(root: Path) -> set[tuple[str, int, str]]:
    from frictionless import Package

    report = Package(str(root / "datapackage.json")).validate()
    return {
        (task.name, error.row_number or 0, error.type)
        for task in report.tasks
        for error in task.errors
        if not task.name.endswith("-parquet")
    }


def test_fastcheck_finds_every_seeded_error_frictionless_finds(
    fresh_build: Path, tmp_path: Path
) -> None:
    _seed_package(fresh_build, tmp_path)
    descriptor = json.loads((tmp_path / "datapackage.json").read_text())
    fast = {(f.table, f.row, f.kind) for f in fastcheck.check_package(tmp_path, descriptor)}
    slow = _frictionless_findings(tmp_path)
    seeded = {(resource, row, kind) for resource, row, _, _, kind in SEEDED}
    assert seeded <= slow
    assert seeded <= fast
    assert fast == slow


def test_fastcheck_is_clean_on_the_real_package(fresh_build: Path) -> None:
    descriptor = json.loads((fresh_build / "datapackage.json").read_text())
    assert fastcheck.check_package(fresh_build, descriptor) == []
