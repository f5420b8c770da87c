"""The bulk reader (coop100.read.bulk): JSONL rows judged by the column rules the models declare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import synth

from coop100.pipeline import build
from coop100.problems import RecordsError
from coop100.read import bulk
from coop100.read.records import Records
from coop100.rules.models import MODEL_BY_TABLE
from coop100.verify import validate
from tests.unit.rules.test_checks import verdicts


def test_synthetic_archive_builds_and_validates(archive: Path, records: Records) -> None:
    read = bulk.read_tables(archive / "records")
    assert read.tables["statements"].num_rows == 300 + len(records.rows("statements"))
    assert build(archive).paths != []
    assert validate.validate_package(archive, engine="columnar") == []
    assert validate.validate_package(archive, engine="frictionless") == []


# -- bulk rows: the column rules refuse exactly what the models refuse ----------------

BAD_VALUES: list[tuple[str, str, Any]] = [
    ("statements", "text", " leading space"),
    ("statements", "text", "trailing space\u00a0"),
    ("statements", "text", ""),
    ("statements", "text", "=SUM(A1)"),
    ("statements", "text", "bell\x07"),
    ("statements", "text", "e\u0301"),  # not NFC
    ("statements", "text", "x" * 2001),
    ("statements", "type", "rant"),
    ("statements", "statement_id", "Not-A-Slug"),
    ("statements", "statement_id", "slug\n"),
    ("statements", "event_id", None),
    ("statements", "person_id", None),  # and no organisation_id: no speaker
    ("statements", "paragraph", 0),
    ("events", "start_date", "2020-02-30"),
    ("events", "start_date", "2020-3-01"),
    ("events", "start_date", "\u0662\u0660\u0662\u0660-01-01"),
    ("events", "end_date", "1999-01-01"),  # before start_date
    ("events", "start_time", "24:00"),
    ("events", "start_time", "9:30"),
    ("events", "attendance_summary", -1),
    ("events", "mode", "telepathy"),
    ("organisations", "country", "ch"),
    ("organisations", "country", "CH\n"),
    ("organisations", "founded", "1919-13"),
    ("organisations", "wikidata_id", "Q0"),
    ("affiliations", "end", "1980"),  # before start
    ("affiliations", "start", "20200"),
    ("participations", "speaking_order", 0),
    ("participations", "role", "host"),
]
GOOD_VALUES: list[tuple[str, str, Any]] = [
    ("statements", "text", "Zoë said “ça va” — 中文 ✓"),
    ("statements", "text", "x" * 2000),
    ("events", "start_date", "2020-02-29"),
    ("events", "start_time", "23:59"),
    ("organisations", "founded", "1919-02"),
    ("affiliations", "end", "2018-12"),
]


def _first_row(archive: Path, table: str, needs: str) -> dict[str, Any]:
    path = archive / "records" / "bulk" / f"{table}.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row: dict[str, Any] = json.loads(line)
        if needs in row or needs in ("paragraph", "end", "country", "founded", "wikidata_id"):
            if table != "statements" or row.get("paragraph"):
                return row
    raise AssertionError(f"no {table} row with {needs}")


@pytest.mark.parametrize(("table", "field", "value"), BAD_VALUES + GOOD_VALUES)
def test_column_rules_agree_with_models(archive: Path, table: str, field: str, value: Any) -> None:
    row = _first_row(archive, table, field)
    changed = dict(row) | {field: value}
    if table == "affiliations":
        changed.setdefault("start", "1990")
    by_model, by_rules = verdicts(MODEL_BY_TABLE[table], [row, changed])
    assert by_model == by_rules
    assert by_model == [False, (table, field, value) in BAD_VALUES]


def _seed_bulk(archive: Path, tmp_path: Path, table: str, edit: Any) -> Path:
    root = tmp_path / "seeded"
    synth.write_archive(root, 300)
    path = root / "records" / "bulk" / f"{table}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    edit(rows)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return root


@pytest.mark.parametrize(
    ("table", "edit", "expected"),
    [
        (
            "statements",
            lambda rows: rows[4].update(statement_id=rows[3]["statement_id"]),
            "records/bulk/statements.jsonl:5:2: statements '{}' field 'statement_id': "
            "duplicate id (first at records/bulk/statements.jsonl:4)",
        ),
        (
            "statements",
            lambda rows: rows[2].update(person_id="nobody"),
            "records/bulk/statements.jsonl:3:56: statements '{}' field 'person_id': "
            "'nobody' is not a known people id",
        ),
        (
            "affiliations",
            lambda rows: rows[0].update(preferred=not rows[0]["preferred"]),
            "field 'preferred'",
        ),
        (
            "statements",
            lambda rows: rows[1].update(speaker="x"),
            "records/bulk/statements.jsonl:2:1: statements '{}' field 'speaker': "
            "is not a field of statements",
        ),
        (
            "statements",
            lambda rows: rows[1].update(paragraph="3"),
            "records/bulk/statements.jsonl:2:1: statements '{}' field 'paragraph': "
            "must be a whole number, not '3'",
        ),
    ],
)
def test_bulk_problems_name_file_and_line(
    archive: Path, tmp_path: Path, table: str, edit: Any, expected: str
) -> None:
    root = _seed_bulk(archive, tmp_path, table, edit)
    rows = (root / "records" / "bulk" / f"{table}.jsonl").read_text().splitlines()
    line = int(expected.split(":")[1]) if expected.startswith("records") else 1
    key = json.loads(rows[line - 1]).get("statement_id", "")
    with pytest.raises(RecordsError) as caught:
        bulk.read_tables(root / "records")
    text = str(caught.value)
    assert expected.format(key) in text
