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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from annotated_types import Ge, Le, MaxLen
from pydantic import ValidationError

from . import inputs, models
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
from .tables import _metadata, _unwrap, arrow_schema, columns, to_arrow

BULK_DIR = "bulk"
BULK_SUFFIX = ".jsonl"
# Sources feed datapackage.json and are few: they stay YAML.
BULK_TABLES = tuple(m.table for m in MODELS if m is not Source)
# Past this many problems in one file, the rest are counted, not listed.
MAX_LISTED = 1000
# pyarrow parses a JSON Lines file in blocks of this many bytes, one per thread.
BLOCK_SIZE = 16 << 20

_LOCATION = ("_path", "_line")

# -- the rules of models.py as Arrow expressions ---------------------------------

# Python's str.isspace() and `\s`, `\d` are Unicode-wide; RE2's are ASCII. Spell
# Python's sets out so a column check accepts exactly what the model accepts.
_PY_SPACE = "".join(f"\\x{{{c:x}}}" for c in range(0x3001) if chr(c).isspace())  # none above U+3000
_PY_DIGIT = r"\p{Nd}"
_CONTROL = r"[\x{0}-\x{1f}\x{7f}-\x{9f}]"

# A boolean column (pa.Array or pa.ChunkedArray); pyarrow ships no type stubs.
Mask = Any


def _matches(values: Mask, pattern: str) -> Mask:
    return pc.match_substring_regex(values, pattern)


def _clean_text_bad(values: Mask) -> Mask:
    space = f"[{_PY_SPACE}]"
    return pc.or_(
        pc.or_(
            _matches(values, f"^{space}|{space}$"),
            pc.equal(pc.utf8_length(values), 0),
        ),
        pc.or_(
            pc.or_(_matches(values, r"^[=+\-@\t\r]"), _matches(values, _CONTROL)),
            pc.not_equal(pc.utf8_normalize(values, "NFC"), values),
        ),
    )


def _calendar_bad(values: Mask, fmt: str) -> Mask:
    # strptime rolls 30 February over to 1 March: a real day prints back as itself.
    parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
    bad = pc.fill_null(pc.not_equal(pc.strftime(parsed, format=fmt), values), True)
    return pc.and_(pc.is_valid(values), bad)


def _partial_date_bad(values: Mask) -> Mask:
    shape = f"^{_PY_DIGIT}{{4}}(?:-{_PY_DIGIT}{{2}}(?:-{_PY_DIGIT}{{2}})?)?$"
    length = pc.utf8_length(values)
    padded = pc.if_else(
        pc.equal(length, 4),
        pc.binary_join_element_wise(values, "-01-01", ""),
        pc.if_else(pc.equal(length, 7), pc.binary_join_element_wise(values, "-01", ""), values),
    )
    return pc.or_(pc.invert(_matches(values, shape)), _calendar_bad(padded, "%Y-%m-%d"))


def _iso_date_bad(values: Mask) -> Mask:
    shape = f"^{_PY_DIGIT}{{4}}-{_PY_DIGIT}{{2}}-{_PY_DIGIT}{{2}}$"
    return pc.or_(pc.invert(_matches(values, shape)), _calendar_bad(values, "%Y-%m-%d"))


def _clock_time_bad(values: Mask) -> Mask:
    # Unicode digits pass the model's regex but not time.fromisoformat: ASCII only.
    return pc.invert(_matches(values, r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))


def _regex_bad(pattern: str) -> Callable[[Mask], Mask]:
    return lambda values: pc.invert(_matches(values, pattern))


# Each validator function of models.py -> the column check that refuses the same values.
VALIDATOR_CHECKS: dict[Callable[..., Any], Callable[[Mask], Mask]] = {
    # The JSON read already refused anything but text; a null is the required rule's.
    models._strict_str: lambda values: pc.equal(pc.utf8_length(values), -1),
    models._clean_text: _clean_text_bad,
    models._slug: _regex_bad(r"^[a-z0-9]+(?:-[a-z0-9]+)*$"),
    models._partial_date: _partial_date_bad,
    models._iso_date: _iso_date_bad,
    models._clock_time: _clock_time_bad,
    models._country: _regex_bad(r"^[A-Z]{2}$"),
    models._url: _regex_bad(rf"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{{2,}}(?:[/?#][^{_PY_SPACE}]*)?$"),
    models._wikidata: _regex_bad(r"^Q[1-9][0-9]*$"),
}


def _s1_paragraph_bad(model: type[Record]) -> Callable[[pa.Table], Mask]:
    def check(t: pa.Table) -> Mask:
        is_s1 = pc.equal(t["source_id"], models.PRIMARY_SOURCE)
        has = pc.is_valid(t["paragraph"])
        extra = pc.and_(pc.invert(is_s1), has)
        if not getattr(model, "s1_paragraph_required", False):
            return extra
        return pc.or_(pc.and_(is_s1, pc.invert(has)), extra)

    return check


def _same(a: str, b: str) -> Callable[[pa.Table], Mask]:
    return lambda t: pc.fill_null(pc.equal(t[a], t[b]), False)


def _both_null(a: str, b: str) -> Callable[[pa.Table], Mask]:
    return lambda t: pc.and_(pc.is_null(t[a]), pc.is_null(t[b]))


def _affiliation_dates_bad(t: pa.Table) -> Mask:
    end, start = t["end"], t["start"]
    prefix = pc.utf8_slice_codeunits(start, 0, 10)
    # end < start[:len(end)], per length of end (4, 7 or 10 characters)
    cut = pc.if_else(
        pc.equal(pc.utf8_length(end), 4),
        pc.utf8_slice_codeunits(start, 0, 4),
        pc.if_else(pc.equal(pc.utf8_length(end), 7), pc.utf8_slice_codeunits(start, 0, 7), prefix),
    )
    return pc.or_(
        pc.fill_null(pc.less(end, cut), False),
        _both_null("role", "organisation_id")(t),
    )


def _event_bad(t: pa.Table) -> Mask:
    # Both dates were checked to be real days; as ISO text they order as dates.
    before = pc.fill_null(pc.less(t["end_date"], t["start_date"]), False)
    return pc.or_(before, _same("parent_event_id", "event_id")(t))


def _statement_bad(t: pa.Table) -> Mask:
    return pc.or_(
        _both_null("person_id", "organisation_id")(t),
        _same("responds_to_statement_id", "statement_id")(t),
    )


# Each model validator of models.py -> the table check that refuses the same rows.
MODEL_CHECKS: dict[str, Callable[[type[Record]], Callable[[pa.Table], Mask]]] = {
    "_paragraph_only_for_s1": _s1_paragraph_bad,
    "_not_own_parent": lambda m: _same("parent_organisation_id", "organisation_id"),
    "_dates_in_order": lambda m: _affiliation_dates_bad if m is models.Affiliation else _event_bad,
    "_has_speaker": lambda m: _statement_bad,
}


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
        core, _ = _unwrap(info.annotation)
        for meta in _metadata(info, info.annotation):
            func = getattr(meta, "func", None)
            if func is not None:
                if func not in VALIDATOR_CHECKS:
                    raise TypeError(f"{model.__name__}.{column.name}: no column check for {func}")
                checks.append((func.__name__, VALIDATOR_CHECKS[func](values)))
            elif getattr(meta, "pattern", None):
                checks.append(("pattern", _regex_bad(meta.pattern)(values)))
            elif isinstance(meta, Ge):
                checks.append(("too small", pc.less(values, meta.ge)))
            elif isinstance(meta, Le):
                checks.append(("too big", pc.greater(values, meta.le)))
            elif not isinstance(meta, MaxLen) and type(meta).__name__ != "Strict":
                raise TypeError(f"{model.__name__}.{column.name}: no column check for {meta!r}")
        valid = pc.is_valid(values)  # a null breaks only the required rule
        for rule, mask in checks:
            found.append((f"{column.name}: {rule}", pc.and_(valid, pc.fill_null(mask, False))))
    for name in model.__pydantic_decorators__.model_validators:
        found.append((f"model: {name}", pc.fill_null(MODEL_CHECKS[name](model)(table), False)))
    return found


def _any(masks: list[Mask], length: int) -> pa.ChunkedArray:
    result: Mask = pc.fill_null(pa.nulls(length, pa.bool_()), False)
    for mask in masks:
        result = pc.or_(result, mask)
    return result


# -- reading ---------------------------------------------------------------------


def _line_problems(path: Path, model: type[Record], shown: str) -> list[Problem]:
    """Find the problems of a file pyarrow refused as a whole, or whose lines it miscounted.

    The file is read again in pieces of whole lines: a piece pyarrow reads row for
    row is checked by the column rules, and only the others are validated line by
    line with Pydantic (~20 µs a line), so one broken line among a million costs
    seconds, not the minute that validating every line took.
    """
    problems: list[Problem] = []
    first = 1
    # inputs.scan_jsonl has checked the file is UTF-8 with lines of at most BLOCK_SIZE.
    for piece in inputs.line_pieces(path, BLOCK_SIZE):
        lines = piece.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        table = _read_piece(piece, model)
        if table is not None and table.num_rows == len(lines):
            problems += _rule_problems(table, model, shown, first)
        else:
            for number, line in enumerate(lines, start=first):
                problems += _validate_line(line.decode("utf-8"), number, model, shown)
                if len(problems) >= MAX_LISTED:
                    break
        if len(problems) >= MAX_LISTED:
            return problems[:MAX_LISTED]
        first += len(lines)
    return problems


def _read_piece(piece: bytes, model: type[Record]) -> pa.Table | None:
    try:
        return _read_json(pa.BufferReader(piece), model)
    except pa.ArrowInvalid:
        return None


def _read_json(source: Any, model: type[Record]) -> pa.Table:
    return pajson.read_json(
        source,
        read_options=pajson.ReadOptions(block_size=BLOCK_SIZE),
        parse_options=pajson.ParseOptions(
            explicit_schema=json_schema(model), unexpected_field_behavior="error"
        ),
    )


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    too_many = inputs.too_many_keys(len(pairs))
    if too_many:
        raise ValueError(too_many)
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"repeats the key '{key}'; keep one")
        problem = isinstance(value, str) and inputs.surrogate_problem(value)
        if problem:
            raise ValueError(f"field '{key}' {problem}")
        data[key] = value
    return data


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number; give a number or leave the field out")


def _validate_line(line: str, number: int, model: type[Record], shown: str) -> list[Problem]:
    try:
        data = json.loads(
            line,
            object_pairs_hook=_object,
            parse_int=inputs.whole_number,
            parse_constant=_not_json,
        )
    except json.JSONDecodeError as exc:
        where = exc.colno if exc.lineno == 1 else len(line)
        message = f"is not one JSON object per line: {exc.msg.removesuffix(' at')}"
        return [Problem(shown, number, where, message=message)]
    except ValueError as exc:  # from the hooks above
        return [Problem(shown, number, 1, message=str(exc))]
    except RecursionError:
        return [Problem(shown, number, 1, message="nests too deep; give each field a plain value")]
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
        inputs.check_file(path, inputs.JSONL_MAX_BYTES, "a bulk file")
        lines = inputs.scan_jsonl(path, BLOCK_SIZE)
    except inputs.InputProblem as exc:
        return BulkTable(None, [Problem(shown, exc.line, exc.column, message=exc.message)])
    try:
        raw = _read_json(path, model)
    except pa.ArrowInvalid as exc:
        # The line-by-line reader refuses all pyarrow does; if not, say what pyarrow said.
        unread = Problem(shown, message=f"cannot be read: {exc}")
        return BulkTable(None, _line_problems(path, model, shown) or [unread])
    if raw.num_rows != lines:
        # A blank line would shift every line number after it.
        return BulkTable(
            None,
            _line_problems(path, model, shown)
            or [Problem(shown, message="holds blank lines; give one JSON object per line")],
        )
    problems = _rule_problems(raw, model, shown)
    return BulkTable(None if problems else _published(raw, model), problems)


def _rule_problems(
    raw: pa.Table, model: type[Record], shown: str, first_line: int = 1
) -> list[Problem]:
    """The problems of rows (the first on first_line) read by pyarrow, by the column rules."""
    checks = row_problems(raw, model)
    bad = _any([mask for _, mask in checks], raw.num_rows)
    if not pc.any(bad).as_py():
        return []
    problems: list[Problem] = []
    indices = pc.indices_nonzero(bad)
    for index in indices.to_pylist()[:MAX_LISTED]:
        line = first_line + index
        row = {k: v for k, v in raw.slice(index, 1).to_pylist()[0].items() if v is not None}
        found = _validate_line(json.dumps(row), line, model, shown)
        if not found:  # the model accepts what a column rule refused: report the rule
            rules = [rule for rule, mask in checks if mask[index].as_py()]
            found = [Problem(shown, line, 1, model.table, message=f"breaks {rules}")]
        problems += found
    if len(indices) > MAX_LISTED:
        problems.append(
            Problem(shown, message=f"{len(indices) - MAX_LISTED} more invalid rows not listed")
        )
    return problems


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
    if not (records_dir / BULK_DIR).is_dir():
        where = _show(records_dir / BULK_DIR, base)
        problems.append(Problem(where, message=f"is not a folder; give {where}/<table>.jsonl"))
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
