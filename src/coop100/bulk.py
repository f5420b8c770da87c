"""Read records/bulk/<table>.jsonl at scale and check every record with columnar rules.

Hand-edited records stay YAML. A big archive (a million statements) comes in as
JSON Lines, one object per line, validated against the same models: pyarrow
reads each file into a typed Arrow table, and the constraints of each model
field (types, required, enums, lengths, bounds, the validators in models.py and
the model validators) are checked as whole-column expressions, with no Python
loop over rows. Rows that break a rule are then validated by the Pydantic model
itself, so each problem is reported with the same message as in YAML. A file
that pyarrow cannot type (bad JSON, a wrong JSON type, an unknown field) is
validated line by line by Pydantic instead: slow, but only for broken files.

The cross-record checks of records.check_references (unique keys, references,
preferred claims, names, participations) run here as Arrow joins and
group-bys over the YAML and bulk rows together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from annotated_types import Ge, Le, MaxLen
from pydantic import ValidationError

from .checks import Check, Mask, matches
from .models import MODELS, Record, Source
from .records import (
    PARENT_LINKS,
    Located,
    Problem,
    RecordsError,
    _Mapping,
    _model_problems,
    _show,
    load_records,
    loop_message,
    loops_back,
)
from .tables import _metadata, arrow_schema, columns, to_arrow

BULK_DIR = "bulk"
BULK_SUFFIX = ".jsonl"
# Sources feed datapackage.json and are few: they stay YAML.
BULK_TABLES = tuple(m.table for m in MODELS if m is not Source)
# Past this many problems in one file, the rest are counted, not listed.
MAX_LISTED = 1000
# pyarrow parses a JSON Lines file in blocks of this many bytes, one per thread.
BLOCK_SIZE = 16 << 20

_LOCATION = ("_path", "_line")

# -- the rules of models.py over whole columns ------------------------------------------


def json_schema(model: type[Record]) -> pa.Schema:
    """The Arrow schema a JSON Lines file of a table is read with: dates and times as text."""
    fields = []
    for column in columns(model):
        atype = column.arrow_type
        if pa.types.is_date(atype) or pa.types.is_time(atype):
            atype = pa.string()
        fields.append(pa.field(column.name, atype))
    return pa.schema(fields)


def row_problems(table: pa.Table, model: type[Record]) -> list[tuple[str, Mask]]:
    """Every (rule, mask of rows breaking it) of a model over a table read with json_schema."""
    found: list[tuple[str, Mask]] = []
    for column in columns(model):
        info = model.model_fields[column.name]
        values = table[column.name]
        if column.required:
            found.append((f"{column.name}: is required but missing", pc.is_null(values)))
        checks: list[tuple[str, Mask]] = []
        if column.enum:
            checks.append(("is not allowed", pc.invert(pc.is_in(values, pa.array(column.enum)))))
        if column.max_length is not None:
            checks.append(("is too long", pc.greater(pc.utf8_length(values), column.max_length)))
        for meta in _metadata(info, info.annotation):
            if isinstance(meta, Check):
                checks.append((meta.description, meta.arrow(values)))
            elif getattr(meta, "pattern", None):
                checks.append(("pattern", pc.invert(matches(values, meta.pattern))))
            elif isinstance(meta, Ge):
                checks.append(("too small", pc.less(values, meta.ge)))
            elif isinstance(meta, Le):
                checks.append(("too big", pc.greater(values, meta.le)))
            elif not isinstance(meta, MaxLen) and type(meta).__name__ != "Strict":
                raise TypeError(f"{model.__name__}.{column.name}: no column check for {meta!r}")
        valid = pc.is_valid(values)  # a null breaks only the required rule
        for rule, mask in checks:
            found.append((f"{column.name}: {rule}", pc.and_(valid, pc.fill_null(mask, False))))
    for row_check in model.row_checks:
        found.append((f"{row_check.field}: row", pc.fill_null(row_check.arrow(table), False)))
    return found


def _any(masks: list[Mask], length: int) -> pa.ChunkedArray:
    result: Mask = pc.fill_null(pa.nulls(length, pa.bool_()), False)
    for mask in masks:
        result = pc.or_(result, mask)
    return result


# -- reading ---------------------------------------------------------------------


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (0 if lines == 0 or last == b"\n" else 1)


def _line_problems(path: Path, model: type[Record], shown: str) -> list[Problem]:
    """Validate a file line by line with Pydantic: the exact path for broken files."""
    problems = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            problems += _validate_line(line, number, model, shown)
            if len(problems) >= MAX_LISTED:
                break
    return problems


def _validate_line(line: str, number: int, model: type[Record], shown: str) -> list[Problem]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        return [Problem(shown, number, 1, message=f"is not one JSON object per line: {exc}")]
    if not isinstance(data, dict):
        return [Problem(shown, number, 1, model.table, message="each line must be a JSON object")]
    row = _Mapping(data)
    row.line, row.column, row.key_marks = number, 1, {}
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return _model_problems(exc, model, row, shown)
    return []


@dataclass
class BulkTable:
    """A bulk file read and checked: its rows in the published schema, or its problems."""

    table: pa.Table | None
    problems: list[Problem]


def read_bulk(path: Path, model: type[Record], shown: str) -> BulkTable:
    """Read one JSON Lines file of a table and check every row against its model."""
    try:
        raw = pajson.read_json(
            path,
            read_options=pajson.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=pajson.ParseOptions(
                explicit_schema=json_schema(model), unexpected_field_behavior="error"
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return BulkTable(None, _line_problems(path, model, shown) or [Problem(shown, 1, 1)])
    if raw.num_rows != _count_lines(path):
        # A blank line would shift every line number after it.
        return BulkTable(
            None,
            _line_problems(path, model, shown)
            or [Problem(shown, message="holds blank lines; give one JSON object per line")],
        )
    checks = row_problems(raw, model)
    bad = _any([mask for _, mask in checks], raw.num_rows)
    if not pc.any(bad).as_py():
        return BulkTable(_published(raw, model), [])
    problems: list[Problem] = []
    indices = pc.indices_nonzero(bad)
    for index in indices.to_pylist()[:MAX_LISTED]:
        row = {k: v for k, v in raw.slice(index, 1).to_pylist()[0].items() if v is not None}
        found = _validate_line(json.dumps(row), index + 1, model, shown)
        if not found:  # the model accepts what a column rule refused: report the rule
            rules = [rule for rule, mask in checks if mask[index].as_py()]
            found = [Problem(shown, index + 1, 1, model.table, message=f"breaks {rules}")]
        problems += found
    if len(indices) > MAX_LISTED:
        problems.append(
            Problem(shown, message=f"{len(indices) - MAX_LISTED} more invalid rows not listed")
        )
    return BulkTable(None, problems)


def _published(raw: pa.Table, model: type[Record]) -> pa.Table:
    """Cast a checked raw table to the published Arrow schema."""
    schema = arrow_schema(model)
    arrays = []
    for field in schema:
        values = raw[field.name]
        if pa.types.is_date(field.type):
            values = pc.cast(pc.strptime(values, format="%Y-%m-%d", unit="s"), pa.date32())
        elif pa.types.is_time(field.type):
            hours = pc.cast(pc.utf8_slice_codeunits(values, 0, 2), pa.int32())
            minutes = pc.cast(pc.utf8_slice_codeunits(values, 3, 5), pa.int32())
            ms = pc.multiply(pc.add(pc.multiply(hours, 60), minutes), 60_000)
            values = pc.cast(pc.cast(ms, pa.int32()), pa.time32("ms"))
        arrays.append(values)
    return pa.Table.from_arrays(arrays, schema=schema)


# -- records: YAML and bulk together ------------------------------------------------


@dataclass
class Tables:
    """Every published table as Arrow, with the sources datapackage.json lists."""

    tables: dict[str, pa.Table]
    sources: list[Source]


def bulk_files(records_dir: Path) -> dict[str, Path]:
    """The bulk files present, by table."""
    folder = records_dir / BULK_DIR
    return {p.stem: p for p in sorted(folder.glob(f"*{BULK_SUFFIX}"))} if folder.is_dir() else {}


def located_yaml(model: type[Record], located: list[Located]) -> pa.Table:
    """YAML records as an Arrow table, with the _path and _line the checks report."""
    return (
        to_arrow(model, [loc.record for loc in located])
        .append_column("_path", pa.array([loc.path for loc in located], pa.string()))
        .append_column("_line", pa.array([loc.line for loc in located], pa.int64()))
    )


def located_bulk(table: pa.Table, shown: str) -> pa.Table:
    """A bulk table with _path (the file as shown) and _line (1-based) appended."""
    n = table.num_rows
    return table.append_column(
        "_path", pa.repeat(pa.scalar(shown), n).cast(pa.string())
    ).append_column("_line", pa.array(range(1, n + 1), pa.int64()))


def read_tables(records_dir: Path) -> Tables:
    """Read records/ (YAML, and bulk JSON Lines if any) into checked Arrow tables.

    Raises:
        RecordsError: listing every problem found.
    """
    files = bulk_files(records_dir)
    if not files and not (records_dir / BULK_DIR).exists():
        records = load_records(records_dir)
        return Tables(
            {m.table: to_arrow(m, records.rows(m.table)) for m in MODELS},
            [r for r in records.rows("sources") if isinstance(r, Source)],
        )
    records = load_records(records_dir, cross_check=False)
    base = records_dir.parent
    problems: list[Problem] = []
    for table, path in files.items():
        if table not in BULK_TABLES:
            problems.append(
                Problem(
                    _show(path, base),
                    message="is not a bulk table; expected one of "
                    + ", ".join(f"{t}{BULK_SUFFIX}" for t in BULK_TABLES),
                )
            )
    tables: dict[str, pa.Table] = {}
    for model in MODELS:
        parts = [located_yaml(model, records.tables[model.table])]
        bulk_path = files.get(model.table)
        if bulk_path is not None and model.table in BULK_TABLES:
            shown = _show(bulk_path, base)
            bulk = read_bulk(bulk_path, model, shown)
            problems += bulk.problems
            if bulk.table is not None:
                parts.append(located_bulk(bulk.table, shown))
        tables[model.table] = pa.concat_tables(parts)
    if not problems:
        problems += check_tables(tables)
    if problems:
        raise RecordsError(problems)
    return Tables(
        {name: t.drop_columns(list(_LOCATION)) for name, t in tables.items()},
        [r for r in records.rows("sources") if isinstance(r, Source)],
    )


# -- checks across records, as joins and group-bys ------------------------------------


def _key(table: pa.Table, model: type[Record]) -> Mask:
    if len(model.primary_key) == 1:
        return table[model.primary_key[0]]
    return pc.binary_join_element_wise(*[table[f] for f in model.primary_key], "/")


def _where(table: pa.Table, index: int) -> tuple[str, int]:
    return table["_path"][index].as_py(), table["_line"][index].as_py()


def _listed(mask: Mask) -> list[int]:
    indices: list[int] = pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()
    return indices[:MAX_LISTED]


def check_tables(tables: dict[str, pa.Table]) -> list[Problem]:
    """The checks of records.check_references, over Arrow tables holding _path and _line."""
    problems: list[Problem] = []
    keys: dict[str, Mask] = {}
    for model in MODELS:
        table = tables[model.table]
        key = _key(table, model)
        keys[model.table] = key
        numbered = pa.table({"key": key, "row": pa.array(range(table.num_rows), pa.int64())})
        groups = numbered.group_by("key", use_threads=False).aggregate(
            [("row", "min"), ("row", "count")]
        )
        repeated = groups.filter(pc.greater(groups["row_count"], 1))
        if repeated.num_rows == 0:
            continue
        first = dict(zip(repeated["key"].to_pylist(), repeated["row_min"].to_pylist(), strict=True))
        mask = pc.and_(
            pc.is_in(key, repeated["key"]),
            pc.invert(pc.is_in(numbered["row"], repeated["row_min"])),
        )
        for index in _listed(mask):
            value = key[index].as_py()
            path, line = _where(table, index)
            first_path, first_line = _where(table, first[value])
            problems.append(
                Problem(
                    path,
                    line,
                    1,
                    model.table,
                    value,
                    model.primary_key[-1],
                    f"duplicate id (first at {first_path}:{first_line}); give each its own id",
                )
            )
    for model in MODELS:
        table = tables[model.table]
        for name, (target, _) in model.foreign_keys.items():
            values = table[name]
            mask = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, keys[target])))
            for index in _listed(mask):
                path, line = _where(table, index)
                problems.append(
                    Problem(
                        path,
                        line,
                        1,
                        model.table,
                        keys[model.table][index].as_py(),
                        name,
                        f"'{values[index].as_py()}' is not a known {target} id",
                    )
                )
    problems += _check_cycles(tables)
    problems += _check_preferred(tables, "affiliations", "claim_key", keys)
    problems += _check_preferred(tables, "person_names", "person_id", keys)
    problems += _check_names(tables)
    problems += _check_participations(tables)
    return problems


def _check_cycles(tables: dict[str, pa.Table]) -> list[Problem]:
    # Organisations and events are a few tens of thousands even at a million
    # statements: walking their parent links in Python costs little.
    problems = []
    for table_name, id_field, parent_field in PARENT_LINKS:
        table = tables[table_name]
        ids = table[id_field].to_pylist()
        parent = dict(zip(ids, table[parent_field].to_pylist(), strict=True))
        for index, start in enumerate(ids):
            if loops_back(parent, start):
                path, line = _where(table, index)
                problems.append(
                    Problem(path, line, 1, table_name, start, parent_field, loop_message(start))
                )
    return problems


def _check_preferred(
    tables: dict[str, pa.Table], table_name: str, group_field: str, keys: dict[str, Mask]
) -> list[Problem]:
    table = tables[table_name]
    numbered = pa.table(
        {
            "group": table[group_field],
            "preferred": pc.cast(table["preferred"], pa.int64()),
            "row": pa.array(range(table.num_rows), pa.int64()),
        }
    )
    groups = numbered.group_by("group", use_threads=False).aggregate(
        [("preferred", "sum"), ("row", "min")]
    )
    bad = groups.filter(pc.not_equal(groups["preferred_sum"], 1))
    if bad.num_rows == 0:
        return []
    chosen = numbered.filter(
        pc.and_(pc.is_in(numbered["group"], bad["group"]), pc.equal(numbered["preferred"], 1))
    )
    by_group: dict[str, list[int]] = {}
    for group, row in zip(chosen["group"].to_pylist(), chosen["row"].to_pylist(), strict=True):
        by_group.setdefault(group, []).append(row)
    problems = []
    for group, total, first_row in zip(
        bad["group"].to_pylist(),
        bad["preferred_sum"].to_pylist(),
        bad["row_min"].to_pylist(),
        strict=True,
    ):
        rows = by_group.get(group, [])
        culprits = rows[1:] if rows else [first_row]
        for index in culprits:
            if rows:
                first_key = keys[table_name][rows[0]].as_py()
                message = (
                    f"{total} rows with {group_field} '{group}' are preferred "
                    f"(first {first_key}); mark exactly one"
                )
            else:
                message = f"no row with {group_field} '{group}' is preferred; mark exactly one"
            path, line = _where(table, index)
            problems.append(
                Problem(
                    path, line, 1, table_name, keys[table_name][index].as_py(), "preferred", message
                )
            )
        if len(problems) >= MAX_LISTED:
            break
    return problems


def _check_names(tables: dict[str, pa.Table]) -> list[Problem]:
    names = tables["person_names"]
    preferred = names.filter(pc.equal(names["preferred"], True)).select(["person_id", "name"])
    people = tables["people"]
    numbered = pa.table(
        {
            "person_id": people["person_id"],
            "name": people["name"],
            "row": pa.array(range(people.num_rows), pa.int64()),
        }
    )
    joined = numbered.join(
        preferred.rename_columns(["person_id", "preferred_name"]), "person_id", use_threads=False
    )
    joined = joined.filter(
        pc.fill_null(pc.not_equal(joined["name"], joined["preferred_name"]), False)
    )
    problems = []
    for item in joined.slice(0, MAX_LISTED).to_pylist():
        path, line = _where(people, item["row"])
        problems.append(
            Problem(
                path,
                line,
                1,
                "people",
                item["person_id"],
                "name",
                f"'{item['name']}' differs from the preferred spelling "
                f"'{item['preferred_name']}' in person_names; make them equal",
            )
        )
    return problems


def _check_participations(tables: dict[str, pa.Table]) -> list[Problem]:
    parts = tables["participations"]
    numbered = pa.table(
        {
            "participation_id": parts["participation_id"],
            "person_id": parts["person_id"],
            "affiliation_id": parts["affiliation_id"],
            "row": pa.array(range(parts.num_rows), pa.int64()),
        }
    )
    affiliations = tables["affiliations"].select(["affiliation_id", "person_id"])
    joined = numbered.join(
        affiliations.rename_columns(["affiliation_id", "holder"]),
        "affiliation_id",
        use_threads=False,
    )
    joined = joined.filter(pc.not_equal(joined["person_id"], joined["holder"]))
    problems = []
    for item in joined.slice(0, MAX_LISTED).to_pylist():
        path, line = _where(parts, item["row"])
        problems.append(
            Problem(
                path,
                line,
                1,
                "participations",
                item["participation_id"],
                "affiliation_id",
                f"'{item['affiliation_id']}' belongs to '{item['holder']}', "
                f"not '{item['person_id']}'",
            )
        )
    return problems
