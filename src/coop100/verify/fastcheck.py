"""Check a big published package row by row with pyarrow compute instead of frictionless.

frictionless validates a package one Python cell at a time: right for the real
package, minutes for a million statements. Past settings.FASTCHECK_MIN_BYTES of
CSV, validate.py keeps frictionless for what it does well (the descriptor and
the Table Schemas) and runs here the row checks those schemas declare, each as a
whole-column expression: types (integer, boolean, date, time as frictionless
parses them), required, enum, maxLength, minimum, maximum, primaryKey and
foreignKeys. Every problem carries frictionless's location (resource, row
number counting the header as row 1, field) and its error type.

Parquet resources are typed by their format; validate.check_formats proves
each holds the same rows as its CSV, so the CSV checks cover both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from coop100.problems import Problem
from coop100.rules.checks import calendar_bad, repeated_keys, row_key

# frictionless's defaults for a boolean field
TRUE_VALUES = ("true", "True", "TRUE", "1")
FALSE_VALUES = ("false", "False", "FALSE", "0")
# Past this many problems in one resource, the rest are counted, not listed.
MAX_LISTED = 1000

_INTEGER = r"^[+-]?[0-9]+$"
_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"


def _read_text(path: Path, names: list[str]) -> pa.Table:
    """Every cell as text; a missing value (an empty cell) as null."""
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=16 << 20),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _type_bad(values: Any, ftype: str) -> tuple[Any, Any]:
    """Rows whose cell does not parse as ftype (None: any text does), and the parsed column."""
    if ftype == "integer":
        bad = pc.invert(pc.match_substring_regex(values, _INTEGER))
        parsed = pc.cast(pc.if_else(bad, pa.scalar(None, pa.string()), values), pa.int64())
        return bad, parsed
    if ftype == "boolean":
        known = pa.array(TRUE_VALUES + FALSE_VALUES)
        return pc.invert(pc.is_in(values, known)), values
    if ftype == "date":
        return calendar_bad(values), values
    if ftype == "time":
        return pc.invert(pc.match_substring_regex(values, _TIME)), values
    return None, values  # string: any text


def _findings(
    resource: str, mask: Any, values: Any, field: str, kind: str, what: str
) -> list[Problem]:
    indices = pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()
    listed = [
        Problem(
            table=resource,
            row=i + 2,
            field=field,
            kind=kind,
            message=f"{kind}: {values[i].as_py()!r} {what}",
        )
        for i in indices[:MAX_LISTED]
    ]
    if len(indices) > MAX_LISTED:
        listed.append(
            Problem(
                table=resource,
                field=field,
                kind=kind,
                message=f"{len(indices) - MAX_LISTED} more {kind} not listed",
            )
        )
    return listed


def check_resource(resource: str, table: pa.Table, schema: dict[str, Any]) -> list[Problem]:
    """The row checks of a Table Schema over a table of text cells, foreign keys aside."""
    found: list[Problem] = []
    for spec in schema["fields"]:
        name, ftype = spec["name"], spec.get("type", "string")
        values = table[name]
        missing = spec.get("missingValues", schema.get("missingValues", [""]))
        extra_missing = [m for m in missing if m != ""]
        if extra_missing:
            values = pc.if_else(
                pc.is_in(values, pa.array(extra_missing)), pa.scalar(None, pa.string()), values
            )
        bad, parsed = _type_bad(values, ftype)
        good = pc.is_valid(values)
        if bad is not None:
            bad = pc.and_(good, pc.fill_null(bad, True))
            found += _findings(resource, bad, values, name, "type-error", f"is not a {ftype}")
            good = pc.and_(good, pc.invert(bad))
        rules = spec.get("constraints", {})
        if rules.get("required") and values.null_count:
            found += _findings(
                resource, pc.is_null(values), values, name, "constraint-error", "is required"
            )
        if "enum" in rules:
            out = pc.invert(pc.is_in(values, pa.array(rules["enum"])))
            found += _findings(
                resource, pc.and_(good, out), values, name, "constraint-error", "is not in enum"
            )
        if "maxLength" in rules:
            long = pc.greater(pc.utf8_length(values), rules["maxLength"])
            found += _findings(
                resource, pc.and_(good, long), values, name, "constraint-error", "is too long"
            )
        if "minimum" in rules:
            low = pc.less(parsed, rules["minimum"])
            found += _findings(
                resource, pc.and_(good, low), values, name, "constraint-error", "is too small"
            )
        if "maximum" in rules:
            high = pc.greater(parsed, rules["maximum"])
            found += _findings(
                resource, pc.and_(good, high), values, name, "constraint-error", "is too big"
            )
    key_names = schema.get("primaryKey", [])
    if key_names:
        key = row_key(table, key_names)
        later, _ = repeated_keys(key)
        found += _findings(
            resource, later, key, ",".join(key_names), "primary-key", "is a duplicate key"
        )
    return found


def check_foreign_keys(
    resource: str, table: pa.Table, schema: dict[str, Any], tables: dict[str, pa.Table]
) -> list[Problem]:
    """The foreignKeys of a Table Schema, against the other tables of the package."""
    found: list[Problem] = []
    for fk in schema.get("foreignKeys", []):
        (name,) = fk["fields"]
        target = fk["reference"]["resource"] or resource
        (target_field,) = fk["reference"]["fields"]
        if target != resource and target not in tables:
            continue  # its own read failure is already reported
        known = (tables[target] if target != resource else table)[target_field]
        values = table[name]
        dangling = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, known)))
        found += _findings(
            resource, dangling, values, name, "foreign-key", f"is not a {target}.{target_field}"
        )
    return found


def check_package(
    root: Path, descriptor: dict[str, Any], check_descriptor: bool = True
) -> list[Problem]:
    """Every row problem in the CSV resources of the package under root.

    With check_descriptor, frictionless also validates datapackage.json itself.
    """
    found: list[Problem] = []
    if check_descriptor:
        from frictionless import Package  # slow to import; only the descriptor needs it

        report = Package.validate_descriptor(str(root / "datapackage.json"))
        found += [
            Problem("datapackage.json", kind=e.type, message=e.message) for e in report.errors
        ]
    resources = [r for r in descriptor.get("resources", []) if r.get("format") == "csv"]
    schemas: dict[str, dict[str, Any]] = {}
    tables: dict[str, pa.Table] = {}
    for resource in resources:
        name = resource["name"]
        schema = resource["schema"]
        if isinstance(schema, str):
            schema = json.loads((root / schema).read_text(encoding="utf-8"))
        schemas[name] = schema
        names = [f["name"] for f in schema["fields"]]
        path = root / resource["path"]
        try:
            header = path.open(encoding="utf-8").readline().rstrip("\r\n").split(",")
            if header != names:
                message = f"header {header} is not {names}"
                found.append(Problem(table=name, row=1, kind="incorrect-label", message=message))
                continue
            table = _read_text(path, names)
        except (OSError, UnicodeDecodeError, pa.ArrowInvalid) as exc:
            message = f"cannot be read: {exc}"
            found.append(Problem(table=name, kind="source-error", message=message))
            continue
        found += check_resource(name, table, schema)
        # Foreign keys need only key columns: drop the rest (the text) straight away.
        keep = {n for fk in schema.get("foreignKeys", []) for n in fk["fields"]}
        keep |= {n for n in schema.get("primaryKey", []) if isinstance(n, str)}
        tables[name] = table.select([n for n in names if n in keep])
    for name, table in tables.items():
        found += check_foreign_keys(name, table, schemas[name], tables)
    return found
