"""Records == CSV == Parquet row for row, and every analyst's tool loads the Parquet right."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from coop100 import settings
from coop100.read.records import Records
from coop100.rules.models import MODELS
from coop100.rules.tables import arrow_schema, columns
from coop100.verify.validate import read_csv
from coop100.write.layout import SORT_BY
from tests.site_fixtures import fixture_package

TABLES = [m.table for m in MODELS]
MODEL = {m.table: m for m in MODELS}


def _expected_rows(records: Records, table: str) -> list[dict[str, Any]]:
    names = [c.name for c in columns(MODEL[table])]
    return [{n: getattr(r, n) for n in names} for r in records.rows(table)]


def parquet_order(rows: list[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    """Rows in records order as the Parquet file holds them: sorted by layout.SORT_BY,
    in code point order (which is UTF-8's byte order), nulls last, ties in records order."""
    key = SORT_BY[table]
    return sorted(rows, key=lambda row: (row[key] is None, row[key] or ""))


@pytest.mark.parametrize("table", TABLES)
def test_records_equal_csv_equal_parquet(records: Records, table: str) -> None:
    schema = arrow_schema(MODEL[table])
    expected = _expected_rows(records, table)
    from_csv = read_csv(fixture_package() / settings.CSV_DIR / f"{table}.csv", schema).to_pylist()
    from_parquet = pq.read_table(
        fixture_package() / settings.PARQUET_DIR / f"{table}.parquet"
    ).to_pylist()
    assert from_csv == expected
    assert from_parquet == parquet_order(expected, table)


def test_parquet_carries_types_descriptions_and_package_metadata() -> None:
    file = pq.ParquetFile(fixture_package() / settings.PARQUET_DIR / "events.parquet")
    schema = file.schema_arrow
    assert str(schema.field("start_date").type) == "date32[day]"
    assert str(schema.field("attendance_body").type) == "int64"
    assert schema.field("description").metadata == {b"description": b"What happened, in our words"}
    meta = schema.metadata
    assert meta[b"package_name"] == b"ilo-coop-100"
    assert meta[b"license"] == b"CC-BY-4.0"
    # Not the version: a file changes only when its table does (the descriptor has it).
    assert b"package_version" not in meta
    assert b'"primaryKey": ["event_id"]' in meta[b"table_schema"]
    assert file.metadata.row_group(0).column(0).compression == "ZSTD"
    nulls = file.read(columns=["attendance_body"])
    assert nulls.column("attendance_body").to_pylist() == [None, 110]


@pytest.mark.parametrize("table", TABLES)
def test_pandas_loads_parquet(records: Records, table: str) -> None:
    frame = pd.read_parquet(
        fixture_package() / settings.PARQUET_DIR / f"{table}.parquet",
        engine="pyarrow",
        dtype_backend="pyarrow",
    )
    assert len(frame) == len(records.rows(table))
    assert list(frame.columns) == [c.name for c in columns(MODEL[table])]
    for column in columns(MODEL[table]):
        kind = str(frame[column.name].dtype)
        expected = {
            "string": ("string", "large_string"),
            "integer": ("int64",),
            "boolean": ("bool",),
            "date": ("date32",),
            "time": ("time32",),
        }
        assert kind.startswith(tuple(f"{e}[" for e in expected[column.frictionless_type])), (
            column.name,
            kind,
        )


@pytest.mark.parametrize("table", TABLES)
def test_polars_loads_parquet(records: Records, table: str) -> None:
    frame = pl.read_parquet(fixture_package() / settings.PARQUET_DIR / f"{table}.parquet")
    assert frame.height == len(records.rows(table))
    expected = {
        "string": pl.String,
        "integer": pl.Int64,
        "boolean": pl.Boolean,
        "date": pl.Date,
        "time": pl.Time,
    }
    assert frame.schema == {c.name: expected[c.frictionless_type] for c in columns(MODEL[table])}


@pytest.mark.parametrize("table", TABLES)
def test_duckdb_loads_parquet(records: Records, table: str) -> None:
    path = fixture_package() / settings.PARQUET_DIR / f"{table}.parquet"
    con = duckdb.connect()
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    expected = {
        "string": "VARCHAR",
        "integer": "BIGINT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "time": "TIME",
    }
    assert [(row[0], row[1]) for row in described] == [
        (c.name, expected[c.frictionless_type]) for c in columns(MODEL[table])
    ]
    (count,) = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone() or (0,)
    assert count == len(records.rows(table))


def test_duckdb_reads_csv_and_parquet_alike() -> None:
    con = duckdb.connect()
    csv = fixture_package() / settings.CSV_DIR / "events.csv"
    parquet = fixture_package() / settings.PARQUET_DIR / "events.parquet"
    row = con.execute(
        f"SELECT start_date, start_time, attendance_summary FROM read_csv('{csv}') "
        "WHERE event_id = 'ilo-coop-100-launch-webinar'"
    ).fetchone()
    assert row == (dt.date(2020, 3, 23), dt.time(13, 30), 100)
    diff = con.execute(
        f"SELECT count(*) FROM (SELECT * FROM read_parquet('{parquet}') EXCEPT "
        f"SELECT * FROM read_csv('{csv}', types={{'paragraph': 'BIGINT'}}))"
    ).fetchone()
    assert diff == (0,)
