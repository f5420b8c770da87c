"""The rules across records judge alike in both their forms: over Arrow, and as the build
judges them while it streams (SQLite, and the paragraph rule on each batch).

The build asks the database it loads whether a rule is broken
(integrity.broken_rules, with the tables' keys); read_tables runs the rules over
Arrow to say where and why. Every bad-records case must be found by both or by
neither; a case whose records break a model stops the stream, and the whole read
must find it too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from coop100.load.database import Load
from coop100.load.judge import judge
from coop100.problems import RecordsError
from coop100.read.bulk import Unsure, read_tables, stream_tables
from coop100.rules.integrity import CitedParagraphs
from coop100.rules.models import Source
from coop100.rules.tables import to_arrow
from coop100.versions.release import read_releases
from coop100.write.package import table_resources, write_package_files
from tests.conftest import RECORDS
from tests.e2e.test_bad_records import CASES, _load, apply_case


def _broken_in_sqlite(
    records: Path, out: Path, first_dangling: list[Any] | None = None
) -> list[str]:
    """What the build's database says of records whose rows pass their models.

    first_dangling: given, it gets the first row SQLite's own foreign key check names.
    """
    rows = stream_tables(records)
    cited = CitedParagraphs(to_arrow(Source, rows.sources))  # judged as the build streams
    write_package_files(rows, out, read_releases(records), feeds=[cited])
    resources = table_resources()
    load = Load(resources, out / "judged.db")
    try:
        for resource in resources:
            load.insert(resource["name"], out / resource["path"])
        broken: list[str] = []
        judge(load, broken)
        broken += cited.broken
        if first_dangling is not None:
            first_dangling += load.db.execute("pragma foreign_key_check").fetchall()[:1]
        return broken
    except Exception as exc:  # a duplicate key fails its insert: a broken rule too
        return [str(exc)]
    finally:
        load.abort()


def _broken_in_arrow(records: Path) -> bool:
    try:
        read_tables(records)
    except RecordsError:
        return True
    return False


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_both_forms_of_the_rules_agree(case: Path, tmp_path: Path) -> None:
    records = tmp_path / "records"
    shutil.copytree(RECORDS, records)
    apply_case(_load(case), records)
    try:
        stream_tables(records)
        broken = _broken_in_sqlite(records, tmp_path / "out")
    except Unsure:  # a record breaks its model: the stream stops; the whole read says so too
        assert _broken_in_arrow(records)
        return
    assert bool(broken) == _broken_in_arrow(records), broken


def test_the_real_records_break_no_rule(tmp_path: Path) -> None:
    assert _broken_in_sqlite(RECORDS, tmp_path) == []


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.stem.startswith("dangling-")], ids=lambda p: p.stem
)
def test_a_missing_row_is_named_as_sqlite_names_it(case: Path, tmp_path: Path) -> None:
    # The build asks each distinct key whether its row is there (database.keys_found),
    # and names the first row SQLite's own check finds only when one is missing.
    records = tmp_path / "records"
    shutil.copytree(RECORDS, records)
    apply_case(_load(case), records)
    first: list[Any] = []
    broken = _broken_in_sqlite(records, tmp_path / "out", first)
    table, rowid, parent, _ = first[0]
    assert broken == [f"{table} row {rowid}: refers to a missing {parent}"]
