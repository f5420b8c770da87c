"""Property-based tests: generated valid records publish a valid, lossless package;
mutated records are refused with an error naming the mutated field."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coop100 import settings as coop_settings
from coop100.pipeline import build
from coop100.problems import RecordsError
from coop100.read.records import load_records
from coop100.rules.models import MAX_NAME, MODEL_BY_TABLE
from coop100.rules.tables import arrow_schema, columns
from coop100.verify.validate import read_csv, validate_package
from tests.conftest import RECORDS
from tests.unit.write.test_roundtrip import parquet_order

# Few examples: each one builds and validates a whole package (a second or two).
FEW = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GENERATED_TABLES = ("topics", "statement_topics", "people", "person_names")


def _valid_text(value: str) -> bool:
    return bool(value) and value == value.strip() and not value.startswith(("=", "+", "-", "@"))


texts = (
    st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=40)
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(_valid_text)
)
slugs = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,6}){0,2}", fullmatch=True).map(
    lambda s: f"gen-{s}"
)


@st.composite
def extra_records(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """New topics, people and name spellings, linked to the real statements."""
    topic_ids = draw(st.lists(slugs, min_size=1, max_size=4, unique=True))
    topics = [{"topic_id": t, "label": draw(texts), "definition": draw(texts)} for t in topic_ids]
    links = [
        {"statement_id": s, "topic_id": t}
        for t in topic_ids
        for s in draw(
            st.sets(st.sampled_from(["louis-history", "biondi-unions", "esim-introduction"]))
        )
    ]
    people, names = [], []
    for person_id in draw(st.lists(slugs, max_size=3, unique=True)):
        name = draw(texts)
        person = {
            "person_id": person_id,
            "name": name,
            "sort_name": draw(texts),
            "source_id": draw(st.sampled_from(["s2", "s4", "s6"])),
        }
        if draw(st.booleans()):
            person["honorific"] = draw(st.sampled_from(["Ms", "Mr"]))
        people.append(person)
        names.append(
            {
                "person_name_id": f"{person_id}-s1",
                "person_id": person_id,
                "name": draw(texts),
                "preferred": False,
                "source_id": "s1",
                "paragraph": draw(st.integers(1, 8)),
            }
        )
        names.append(
            {
                "person_name_id": f"{person_id}-s2",
                "person_id": person_id,
                "name": name,
                "preferred": True,
                "source_id": "s2",
            }
        )
    return {"topics": topics, "statement_topics": links, "people": people, "person_names": names}


def _write_records(root: Path, extra: dict[str, list[dict[str, Any]]]) -> None:
    shutil.copytree(RECORDS, root / "records", dirs_exist_ok=True)
    for name in ("topics.yaml", "people.yaml", "events/ilo-coop-100-launch-webinar.yaml"):
        path = root / "records" / name
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for table in data:
            data[table] += extra.get(table, [])
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def _sqlite_rows(db_path: Path, table: str) -> list[dict[str, Any]]:
    """Rows of `table` in the database load_database wrote, converted back to Python types."""
    cols = columns(MODEL_BY_TABLE[table])
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        names = ", ".join(f'"{c.name}"' for c in cols)
        found = db.execute(f'SELECT {names} FROM "{table}" ORDER BY rowid').fetchall()
    db.close()
    return [
        {c.name: _from_sql(v, c.frictionless_type) for c, v in zip(cols, row, strict=True)}
        for row in found
    ]


def _from_sql(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "boolean":
        return bool(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "time":
        return dt.time.fromisoformat(value)
    return value


@FEW
@given(extra=extra_records())
def test_valid_records_publish_a_valid_lossless_package(
    extra: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("generated")
    _write_records(root, extra)
    records = load_records(root / "records")
    db_path = build(root).database  # the real loader, from the published package only
    assert validate_package(root) == []  # frictionless VALID, checksums, CSV == Parquet
    for table in GENERATED_TABLES:
        names = [c.name for c in columns(MODEL_BY_TABLE[table])]
        expected = [{n: getattr(r, n) for n in names} for r in records.rows(table)]
        schema = arrow_schema(MODEL_BY_TABLE[table])
        csv_rows = read_csv(root / coop_settings.CSV_DIR / f"{table}.csv", schema).to_pylist()
        parquet_rows = pq.read_table(
            root / coop_settings.PARQUET_DIR / f"{table}.parquet"
        ).to_pylist()
        assert csv_rows == expected
        assert parquet_rows == parquet_order(expected, table)
        assert _sqlite_rows(db_path, table) == expected
    generated = {row["name"] for row in extra["people"]}
    assert generated <= {p.name for p in records.rows("people")}  # type: ignore[attr-defined]


# Values each kind of field must refuse.
BAD_TEXT = ["", " padded", "=SUM(A1)", "bell\x07", "Ju\u0308rgen", "x" * (MAX_NAME + 1), 42, None]
BAD_ID = ["Upper", "two--hyphens", "-lead", "under_score", "", 7]
MUTATIONS = {
    "topic_id": BAD_ID,
    "label": BAD_TEXT,
    "definition": BAD_TEXT[:-3],
    "person_id": BAD_ID,
    "name": BAD_TEXT,
    "sort_name": BAD_TEXT,
    "honorific": ["Dr", "ms", 1],
    "source_id": BAD_ID,
}


@st.composite
def mutated_records(draw: st.DrawFn) -> tuple[dict[str, list[dict[str, Any]]], str]:
    extra = draw(extra_records().filter(lambda e: bool(e["people"])))
    table = draw(st.sampled_from(["topics", "people"]))
    row = draw(st.sampled_from(extra[table]))
    field = draw(st.sampled_from([f for f in MUTATIONS if f in MODEL_BY_TABLE[table].model_fields]))
    how = draw(st.sampled_from(["value", "drop", "unknown"]))
    if how == "value":
        row[field] = draw(st.sampled_from(MUTATIONS[field]))
    elif how == "drop" and MODEL_BY_TABLE[table].model_fields[field].is_required():
        del row[field]
    else:
        row[field + "x"] = "surplus"
        field += "x"
    return extra, field


@settings(max_examples=25, deadline=None, derandomize=True)
@given(case=mutated_records())
def test_mutated_records_are_refused_naming_the_field(
    case: tuple[dict[str, list[dict[str, Any]]], str],
) -> None:
    import tempfile

    extra, field = case
    with tempfile.TemporaryDirectory() as tmp:
        _write_records(Path(tmp), extra)
        with pytest.raises(RecordsError) as caught:
            load_records(Path(tmp) / "records")
    assert field in {p.field for p in caught.value.problems}, caught.value
