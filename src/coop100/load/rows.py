"""Rows into SQLite: a table's CSV cast as its Table Schema says, or Arrow batches as they come."""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

if TYPE_CHECKING:
    import sqlite_utils

from coop100.problems import DatabaseError

_TRUE = {"true", "True", "TRUE", "1"}
_FALSE = {"false", "False", "FALSE", "0"}
# Rows are parsed and inserted this many CSV bytes at a time, which bounds memory:
# pyarrow's CSV reader reads ahead (at 16 MiB blocks it held 257 MB of the 1M
# statements CSV). A row is at most a few tens of kilobytes (models.py's maxLength).
_BLOCK_BYTES = 1 << 20
# Rows per INSERT statement (insert_columns); SQLite allows 32,766 values per statement.
_ROWS_PER_INSERT = 100


def insert_rows(db: sqlite_utils.Database, csv_path: Path, resource: dict[str, Any]) -> None:
    """Insert the CSV's rows, cast by the schema exactly as _cast does, in batches."""
    fields = resource["schema"]["fields"]
    names = [f["name"] for f in fields]
    missing = set(resource["schema"].get("missingValues", [""]))
    with csv_path.open("rb") as fh:
        header = next(csv.reader(io.TextIOWrapper(fh, encoding="utf-8", newline="")), None)
        if header != names:
            raise DatabaseError(f"{csv_path}: header {header} does not match the schema {names}")
    insert, marks = insert_sql(resource["name"], names), value_marks(names)
    # pyarrow parses the CSV in C++ with every column as text, so the values
    # are the same strings csv.reader yields; the casting stays Python's own.
    try:
        reader = pacsv.open_csv(
            csv_path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=_BLOCK_BYTES, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            cast = [
                _cast_column(batch.column(i).to_pylist(), field, missing, csv_path)
                for i, field in enumerate(fields)
            ]
            insert_columns(db.conn, insert, marks, cast)
    except pa.ArrowInvalid as exc:
        # e.g. a row with more or fewer cells than the header
        raise DatabaseError(f"{csv_path}: {exc}") from None


def insert_sql(table: str, names: list[str]) -> str:
    return f"insert into [{table}] ({', '.join(f'[{name}]' for name in names)}) values "


def value_marks(names: list[str]) -> str:
    return "(" + ", ".join("?" * len(names)) + ")"


def sqlite_values(values: pa.Array) -> list[Any]:
    """A column of a published Arrow table as SQLite gets it from the CSV (_cast_column).

    Booleans are 1 and 0; dates and times the text the CSV holds (YYYY-MM-DD,
    HH:MM:SS); an empty text is missing, as an empty cell is.
    """
    kind = values.type
    if pa.types.is_boolean(kind):
        values = pc.cast(values, pa.int64())
    elif pa.types.is_date(kind):
        values = pc.cast(values, pa.string())
    elif pa.types.is_time(kind):
        values = pc.cast(pc.cast(values, pa.time32("s")), pa.string())
    empty = pa.scalar("", pa.string())
    if pa.types.is_string(values.type) and pc.any(pc.equal(values, empty)).as_py():
        values = pc.if_else(pc.equal(values, empty), pa.scalar(None, pa.string()), values)
    found: list[Any] = values.to_pylist()
    return found


def insert_columns(
    conn: sqlite3.Connection, insert: str, marks: str, columns: list[list[Any]]
) -> None:
    """Insert the rows of these columns, _ROWS_PER_INSERT rows to a statement.

    One statement per row spends most of its time in Python's sqlite3 module,
    not in SQLite: a hundred rows to a statement load the million statements
    about twice as fast, within ~10% of the sqlite3 shell's `.import`.
    """
    width = len(columns)
    values = list(itertools.chain.from_iterable(zip(*columns, strict=True)))
    step = _ROWS_PER_INSERT * width
    whole = len(values) // step * step
    many = insert + ", ".join([marks] * _ROWS_PER_INSERT)
    conn.executemany(many, (values[i : i + step] for i in range(0, whole, step)))
    rest = values[whole:]
    conn.executemany(insert + marks, (rest[i : i + width] for i in range(0, len(rest), width)))


def _cast_column(
    values: list[str], field: dict[str, Any], missing: set[str], where: Path
) -> list[Any]:
    """Cast a whole column as _cast casts each value (a bad value raises _cast's error)."""
    kind = field.get("type", "string")
    if kind not in ("integer", "number", "boolean"):
        if missing.isdisjoint(values):
            return values
        return [None if value in missing else value for value in values]
    if kind == "boolean":
        true = set(field.get("trueValues", _TRUE))
        false = set(field.get("falseValues", _FALSE))
        if true.union(false, missing).issuperset(values):
            return [None if v in missing else 1 if v in true else 0 for v in values]
    else:
        to_number = int if kind == "integer" else float
        try:
            return [None if v in missing else to_number(v) for v in values]
        except ValueError:
            pass
    return [_cast(value, field, missing, where) for value in values]


def _cast(value: str, field: dict[str, Any], missing: set[str], where: Path) -> Any:
    if value in missing:
        return None
    kind = field.get("type", "string")
    if kind == "boolean":
        if value in set(field.get("trueValues", _TRUE)):
            return 1
        if value in set(field.get("falseValues", _FALSE)):
            return 0
        raise DatabaseError(f"{where}: {field['name']}: {value!r} is not a boolean")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        raise DatabaseError(f"{where}: {field['name']}: {value!r} is not a {kind}") from None
    return value
