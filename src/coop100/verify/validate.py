"""Check a published package: checksums, frictionless, and CSV == Parquet row for row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from coop100 import settings
from coop100.problems import Problem
from coop100.rules.models import MODEL_BY_TABLE, MODELS
from coop100.rules.tables import arrow_schema
from coop100.write.digest import file_digest
from coop100.write.layout import file_order, layout


def read_csv(path: Path, schema: pa.Schema) -> pa.Table:
    """Read a published CSV with the published types, independently of frictionless."""
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            include_columns=schema.names,
            # Only an empty, unquoted cell is missing; "nan" or "NULL" are errors.
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["true"],
            false_values=["false"],
        ),
    ).cast(schema)


def read_parquet(path: Path, schema: pa.Schema) -> pa.Table:
    """Read a published Parquet file, checking it has exactly the published columns."""
    # ParquetFile, not pq.read_table: one known file needs no dataset discovery,
    # which took twice as long as reading the real package's small files.
    with pq.ParquetFile(path) as parquet:
        table = parquet.read()
    problem = column_problem(table.schema, schema)
    if problem:
        raise ValueError(problem)
    return table.cast(schema)


def column_problem(found: pa.Schema, expected: pa.Schema) -> str:
    """What differs between a file's columns and types and the published ones ('' if none)."""
    have = [(f.name, f.type) for f in found]
    want = [(f.name, f.type) for f in expected]
    return "" if have == want else f"columns {have} differ from the published schema {want}"


def check_checksums(root: Path, descriptor: dict[str, Any]) -> list[Problem]:
    """Every resource's size and sha256 must match the descriptor."""
    problems = []
    for resource in descriptor.get("resources", []):
        path = root / resource["path"]
        expected_bytes = resource.get("bytes", resource.get("coop100:bytes"))
        expected_hash = resource.get("hash", resource.get("coop100:hash"))
        rel = resource["path"]
        if not path.exists():
            problems.append(Problem(rel, message="missing", hint="run `coop100 build`"))
            continue
        size, sha256 = file_digest(path)
        if expected_bytes != size:
            message = f"is {size} bytes, datapackage.json says {expected_bytes}"
            problems.append(Problem(rel, message=message, hint="run `coop100 build`"))
        if expected_hash != f"sha256:{sha256}":
            message = "sha256 differs from datapackage.json"
            problems.append(Problem(rel, message=message, hint="run `coop100 build`"))
    return problems


def check_formats(root: Path) -> list[Problem]:
    """The CSV and the Parquet file of every table hold exactly the same rows.

    The CSV holds them in records order, the Parquet file in its layout's order
    (layout.file_order): row for row once the CSV's rows are put in that order.
    """
    problems = []
    for model in MODELS:
        schema = arrow_schema(model)
        csv_path = root / settings.CSV_DIR / f"{model.table}.csv"
        parquet_path = root / settings.PARQUET_DIR / f"{model.table}.parquet"
        try:
            from_csv = read_csv(csv_path, schema)
            from_parquet = read_parquet(parquet_path, schema)
        except (OSError, ValueError, pa.ArrowException) as exc:
            problems.append(Problem(table=model.table, message=f"cannot read back: {exc}"))
            continue
        if from_csv.num_rows != from_parquet.num_rows:
            message = f"CSV has {from_csv.num_rows} rows, Parquet {from_parquet.num_rows}"
            problems.append(Problem(table=model.table, message=message))
            continue
        # A column at a time in the file's order: one column's copy, not the table's.
        order = file_order(from_csv, layout(model.table).sort_by)
        for name in schema.names:
            a, b = from_csv.column(name), from_parquet.column(name)
            a = a if order is None else a.take(order)
            if not a.equals(b):
                row = next(i for i in range(len(a)) if a[i] != b[i])
                message = (
                    f"column {name} differs at row {row + 1} of the Parquet file: "
                    f"CSV {a[row].as_py()!r}, Parquet {b[row].as_py()!r}"
                )
                problems.append(Problem(table=model.table, message=message))
                break
    return problems


def check_frictionless(root: Path) -> list[Problem]:
    """Run frictionless over every resource, in both formats."""
    from frictionless import Package  # slow to import; only validation needs it

    report = Package(str(root / settings.DESCRIPTOR)).validate()
    problems = [Problem(settings.DESCRIPTOR, kind=e.type, message=e.message) for e in report.errors]
    for task in report.tasks:
        for error in task.errors:
            problems.append(
                Problem(
                    table=task.name,
                    row=getattr(error, "row_number", None) or 0,
                    field=getattr(error, "field_name", None) or "",
                    kind=error.type,
                    message=error.message,
                )
            )
    return problems


def check_rows(
    root: Path, descriptor: dict[str, Any], engine: str = "auto", check_descriptor: bool = True
) -> list[Problem]:
    """The row checks of the Table Schemas: frictionless, or pyarrow compute for big packages.

    Args:
        engine: "frictionless", "columnar", or "auto" (columnar from
            settings.FASTCHECK_MIN_BYTES of CSV on).
    """
    if engine == "auto":
        csv_bytes = sum(
            (root / r["path"]).stat().st_size
            for r in descriptor.get("resources", [])
            if r.get("format") == "csv" and (root / r["path"]).exists()
        )
        engine = "columnar" if csv_bytes >= settings.FASTCHECK_MIN_BYTES else "frictionless"
    if engine == "frictionless":
        return check_frictionless(root)
    # Lazy: only large packages take the columnar check.
    from coop100.verify.fastcheck import check_package

    return check_package(root, descriptor, check_descriptor)


def validate_package(
    root: Path, engine: str = "auto", check_descriptor: bool = True
) -> list[Problem]:
    """Every problem with the package published under root.

    Args:
        engine: how rows are checked (see check_rows).
        check_descriptor: with the columnar engine, also have frictionless
            validate datapackage.json (a second of start-up on its own).
    """
    path = root / settings.DESCRIPTOR
    try:
        descriptor = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        message = f"cannot be read: {exc}"
        return [Problem(settings.DESCRIPTOR, message=message, hint="run `coop100 build`")]
    names = {r.get("name") for r in descriptor.get("resources", [])}
    problems = [
        Problem(
            settings.DESCRIPTOR,
            message=f"resource '{t}{suffix}' is missing",
            hint="run `coop100 build`",
        )
        for t in MODEL_BY_TABLE
        for suffix in ("", "-parquet")
        if f"{t}{suffix}" not in names
    ]
    problems += check_checksums(root, descriptor)
    problems += check_formats(root)
    problems += check_rows(root, descriptor, engine, check_descriptor)
    return problems
