"""Read records/bulk/<table>.jsonl at scale: the JSON Lines reader of the records.

Hand-edited records stay YAML. A big archive (a million statements) comes in as
JSON Lines, one object per line, validated against the same models: pyarrow
reads each file into a typed Arrow table, and every rule of each model (types,
required, enums, lengths, bounds, and the Arrow form of each Check and RowCheck
declared in models.py) is checked as a whole-column expression, with no Python
loop over rows. Rows that break a rule are then validated by the Pydantic model
itself, so each problem is reported with the same message as in YAML. A file
that pyarrow cannot type (bad JSON, a wrong JSON type, an unknown field) is
validated line by line by Pydantic instead: slow, but only for broken files.

The rules across records (integrity.py) then run once over the YAML and bulk
rows together, and this reader places what they find at `file:line`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from annotated_types import Ge, Le, MaxLen
from pydantic import ValidationError

from coop100.problems import Problem, RecordsError
from coop100.read import inputs
from coop100.read.records import PlacedMapping, Records, model_problems, read_records, shown_path
from coop100.rules.checks import Check, Mask, matches
from coop100.rules.integrity import check_tables, place
from coop100.rules.models import MODEL_BY_TABLE, MODELS, About, Record, Source
from coop100.rules.tables import arrow_schema, columns, field_metadata, to_arrow

BULK_DIR = "bulk"
BULK_SUFFIX = ".jsonl"
# Sources feed datapackage.json and are few: they stay YAML.
BULK_TABLES = tuple(m.table for m in MODELS if m is not Source)
# Past this many problems in one file, the rest are counted, not listed.
MAX_LISTED = 1000
# pyarrow parses a JSON Lines file in blocks of this many bytes, one per thread,
# each cut at its last line break: the pieces inputs.line_pieces cuts too, so a
# file streamed piece by piece gives the same Arrow chunks, hence the same
# Parquet bytes, as a file read whole.
BLOCK_SIZE = inputs.READ_BLOCK
# A file pyarrow cannot type is read again line by line, up to this size, so the
# checks across records can judge its valid rows (larger: the table is not judged).
LINE_BY_LINE_MAX_BYTES = 64 << 20

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
            checks.append(("is too long", _too_long(values, column.max_length)))
        for meta in field_metadata(info, info.annotation):
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


def _too_long(values: Mask, most: int) -> Mask:
    """True where a text has more than `most` characters.

    A text has at most as many characters as bytes: only if some text has more
    bytes are the characters counted (which took 0.13 s over a million statements).
    """
    longer = pc.greater(pc.binary_length(values), most)
    return pc.greater(pc.utf8_length(values), most) if pc.any(longer).as_py() else longer


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
    for view, _ in inputs.line_pieces(path, BLOCK_SIZE):
        piece = bytes(view)  # a broken file only: a copy costs little
        lines = piece.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        table = _read_piece(piece, model)
        if table is not None and table.num_rows == len(lines):
            problems += _rule_problems(table, model, shown, first)[0]
        else:
            for number, line in enumerate(lines, start=first):
                problems += _validate_line(line.decode("utf-8"), number, model, shown)
                if len(problems) >= MAX_LISTED:
                    break
        if len(problems) >= MAX_LISTED:
            return problems[:MAX_LISTED]
        first += len(lines)
    return problems


def _read_piece(piece: bytes | pa.Buffer, model: type[Record]) -> pa.Table | None:
    try:
        return _read_json(pa.BufferReader(piece), model)
    except pa.ArrowInvalid:
        return None


def _json_options(model: type[Record]) -> dict[str, Any]:
    """How pyarrow reads a JSON Lines file of a table, whole or a block at a time."""
    return {
        "read_options": pajson.ReadOptions(block_size=BLOCK_SIZE),
        "parse_options": pajson.ParseOptions(
            explicit_schema=json_schema(model), unexpected_field_behavior="error"
        ),
    }


def _read_json(source: Any, model: type[Record]) -> pa.Table:
    return pajson.read_json(source, **_json_options(model))


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
    return _read_line(line, number, model, shown)[1]


def _read_line(
    line: str, number: int, model: type[Record], shown: str
) -> tuple[Record | None, list[Problem]]:
    """One line read and validated as read_bulk judges it: the record, or its problems."""
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
        return None, [Problem(shown, number, where, message=message)]
    except ValueError as exc:  # from the hooks above
        return None, [Problem(shown, number, 1, message=str(exc))]
    except RecursionError:
        message = "nests too deep; give each field a plain value"
        return None, [Problem(shown, number, 1, message=message)]
    if not isinstance(data, dict):
        message = "each line must be a JSON object"
        return None, [Problem(shown, number, 1, model.table, message=message)]
    row = PlacedMapping(data)
    row.line, row.column, row.key_marks = number, 1, {}
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, model_problems(exc, model, row, shown)


@dataclass
class BulkTable:
    """A bulk file read and checked: its rows in the published schema, or its problems."""

    table: pa.Table | None
    problems: list[Problem]
    # The rows that failed their model, as given (None: not known, so the checks
    # across records must not judge the table), and the line of each row of
    # `table` when some rows between them failed.
    failed: list[dict[str, Any]] | None = None
    lines: list[int] | None = None
    # False when the file itself was refused (not a regular file, too big, not
    # UTF-8, too deep): then nothing may read it again, line by line or otherwise.
    readable: bool = True


def read_bulk(path: Path, model: type[Record], shown: str) -> BulkTable:
    """Read one JSON Lines file of a table and check every row against its model."""
    try:
        inputs.check_file(path, inputs.JSONL_MAX_BYTES, "a bulk file")
        lines = inputs.scan_jsonl(path, BLOCK_SIZE)
    except inputs.InputProblem as exc:
        problem = Problem(shown, exc.line, exc.column, message=exc.message)
        return BulkTable(None, [problem], readable=False)
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
    problems, bad = _rule_problems(raw, model, shown)
    if not problems:
        return BulkTable(_published(raw, model), [])
    good = pc.invert(bad)
    failed = raw.filter(bad).to_pylist() if pc.sum(bad).as_py() <= MAX_LISTED else None
    good_lines = [i + 1 for i in pc.indices_nonzero(good).to_pylist()]
    return BulkTable(_published(raw.filter(good), model), problems, failed, good_lines)


def _rule_problems(
    raw: pa.Table, model: type[Record], shown: str, first_line: int = 1
) -> tuple[list[Problem], pa.ChunkedArray]:
    """The problems of rows (the first on first_line) read by pyarrow, by the column rules.

    Also returns which rows broke a rule (a mask over raw's rows).
    """
    checks = row_problems(raw, model)
    bad = _any([mask for _, mask in checks], raw.num_rows)
    if not pc.any(bad).as_py():
        return [], bad
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
    return problems, bad


def _valid_lines(path: Path, model: type[Record], problems: list[Problem]) -> BulkTable:
    """The rows of a file pyarrow could not type that pass their model, line by line.

    The checks across records then judge them as they judge YAML rows, and count
    the rows that failed as known.
    """
    valid: list[Record] = []
    lines: list[int] = []
    failed: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            # The same judgement read_bulk reported: numbers past Int64 and lone
            # surrogates pass a model but no Arrow table.
            record, _ = _read_line(line, number, model, "")
            if record is not None:
                valid.append(record)
                lines.append(number)
                continue
            try:
                data = json.loads(line)
            except (ValueError, RecursionError):  # reported by read_bulk
                continue
            if isinstance(data, dict):
                failed.append(data)
    return BulkTable(to_arrow(model, valid), problems, failed, lines)


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
    """Every published table as Arrow, with the sources and words datapackage.json gives."""

    tables: dict[str, pa.Table]
    sources: list[Source]
    about: About


def bulk_files(records_dir: Path) -> dict[str, Path]:
    """The bulk files present, by table."""
    folder = records_dir / BULK_DIR
    return {p.stem: p for p in sorted(folder.glob(f"*{BULK_SUFFIX}"))} if folder.is_dir() else {}


@dataclass
class Places:
    """Where each row of the joined tables came from: the YAML records, then a bulk file."""

    records: Records
    bulk: dict[str, BulkTable] = _field(default_factory=dict)
    paths: dict[str, Path] = _field(default_factory=dict)
    shown: dict[str, str] = _field(default_factory=dict)
    # (table, line) -> the text of that line, for the lines a problem names
    texts: dict[tuple[str, int], str] = _field(default_factory=dict)

    def line(self, table: str, row: int) -> int | None:
        """The line of a bulk file a row came from (None: a YAML row)."""
        yaml_rows = len(self.records.tables[table])
        if row < yaml_rows:
            return None
        lines = self.bulk[table].lines
        return lines[row - yaml_rows] if lines is not None else row - yaml_rows + 1

    def read_lines(self, problems: list[Problem]) -> None:
        """Keep the text of each bulk line a problem names, reading each file at most once."""
        wanted: dict[str, set[int]] = {}
        for problem in problems:
            line = self.line(problem.table, problem.row)
            if line is not None:
                wanted.setdefault(problem.table, set()).add(line)
        for table, lines in wanted.items():
            last = max(lines)
            with self.paths[table].open(encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, start=1):
                    if number in lines:
                        self.texts[table, number] = text
                    if number >= last:
                        break

    def where(self, table: str, row: int, name: str) -> tuple[str, int, int]:
        line = self.line(table, row)
        if line is None:
            return self.records.where(table, row, name)
        key = re.search(rf'"{re.escape(name)}"\s*:', self.texts.get((table, line), ""))
        return self.shown[table], line, key.start() + 1 if name and key else 1


def read_tables(records_dir: Path) -> Tables:
    """Read records/ (YAML, and bulk JSON Lines if any) into checked Arrow tables.

    Raises:
        RecordsError: listing every problem found.
    """
    records, problems = read_records(records_dir)
    tables = records.arrow_tables()
    failed = records.failed()
    places = Places(records)
    files, listed = _bulk_listing(records_dir)
    problems += listed
    for table, (path, shown) in files.items():
        bulk = read_bulk(path, MODEL_BY_TABLE[table], shown)
        if bulk.table is None and bulk.readable and path.stat().st_size <= LINE_BY_LINE_MAX_BYTES:
            bulk = _valid_lines(path, MODEL_BY_TABLE[table], bulk.problems)
        problems += bulk.problems
        if bulk.problems and bulk.failed is None:
            failed.unread.add(table)  # what it holds is unknown: refer to it freely
        else:
            failed.rows[table] += bulk.failed or []
        if bulk.table is not None:
            tables[table] = pa.concat_tables([tables[table], bulk.table])
            places.bulk[table], places.paths[table], places.shown[table] = bulk, path, shown
    found = check_tables(tables, failed)
    places.read_lines(found)
    problems += place(found, tables, places.where)
    if problems or records.about is None:
        raise RecordsError(problems)
    sources = [r for r in records.rows("sources") if isinstance(r, Source)]
    return Tables(tables, sources, records.about)


def _bulk_listing(records_dir: Path) -> tuple[dict[str, tuple[Path, str]], list[Problem]]:
    """The bulk files of known tables (path, and path as shown), and problems with the rest."""
    base = records_dir.parent
    problems = []
    bulk_dir = records_dir / BULK_DIR
    if os.path.lexists(bulk_dir) and not bulk_dir.is_dir():
        where = shown_path(bulk_dir, base)
        problems.append(Problem(where, message=f"is not a folder; give {where}/<table>.jsonl"))
    files = {}
    for table, path in bulk_files(records_dir).items():
        shown = shown_path(path, base)
        if table in BULK_TABLES:
            files[table] = (path, shown)
        else:
            expected = ", ".join(f"{t}{BULK_SUFFIX}" for t in BULK_TABLES)
            problems.append(
                Problem(shown, message=f"is not a bulk table; expected one of {expected}")
            )
    return files, problems


# -- streaming: the records a block at a time ------------------------------------------
#
# The build never holds a whole table: it reads each bulk file a block of lines
# at a time (BLOCK_SIZE), checks the block with the column rules and hands it on
# to be written, so memory stays flat however big the archive. The rules across
# records are asked of the database the build loads meanwhile
# (integrity.broken_rules). A problem found either way is reported by reading
# the records again whole (read_tables), which places every problem and says
# why, as long as the bulk files hold at most FULL_READ_MAX_BYTES; past that
# only what the stream found is reported.

# At 1M statements the bulk files hold ~770 MB and read_tables peaks at ~1.3 GB.
FULL_READ_MAX_BYTES = 1 << 30


class Unsure(Exception):
    """The stream met a problem: `problems` says what it saw, perhaps not all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass
class Streamed:
    """The records, each table's rows given as they are read: YAML first, then bulk."""

    yaml: dict[str, pa.Table]
    sources: list[Source]
    about: About
    files: dict[str, tuple[Path, str]]

    def size(self) -> int:
        """Bytes of the bulk files."""
        return sum(path.stat().st_size for path, _ in self.files.values())

    def batches(self, table: str) -> Iterator[pa.Table]:
        """The table's rows in records order, in the published schema, a block at a time.

        Raises:
            Unsure: a block breaks a rule of its model, or cannot be read.
        """
        if self.yaml[table].num_rows:
            yield self.yaml[table]
        if table in self.files:
            path, shown = self.files[table]
            yield from _stream_bulk(path, MODEL_BY_TABLE[table], shown)


@dataclass
class Whole:
    """Tables read whole (read_tables), given as the stream gives them."""

    tables: dict[str, pa.Table]
    sources: list[Source]
    about: About

    def size(self) -> int:
        """Bytes of the tables in memory."""
        return sum(table.nbytes for table in self.tables.values())

    def batches(self, table: str) -> Iterator[pa.Table]:
        if self.tables[table].num_rows:
            yield self.tables[table]


def stream_tables(records_dir: Path) -> Streamed:
    """Read and check the YAML records; the bulk files are read as the caller asks.

    Raises:
        Unsure: a YAML record breaks its model, or a file is where none belongs.
    """
    records, problems = read_records(records_dir)
    files, listed = _bulk_listing(records_dir)
    problems += listed
    if problems or records.about is None:
        raise Unsure(problems)
    sources = [r for r in records.rows("sources") if isinstance(r, Source)]
    return Streamed(records.arrow_tables(), sources, records.about, files)


def read_whole(records_dir: Path, unsure: Unsure) -> Whole:
    """After the stream met a problem: read the records whole to report every problem.

    Raises:
        RecordsError: every problem, placed (past FULL_READ_MAX_BYTES of bulk files,
            those the stream found).
    """
    size = sum(path.stat().st_size for path, _ in _bulk_listing(records_dir)[0].values())
    if size > FULL_READ_MAX_BYTES and unsure.problems:
        raise RecordsError(unsure.problems)
    read = read_tables(records_dir)  # raises RecordsError unless the stream was wrong
    return Whole(read.tables, read.sources, read.about)


def _stream_bulk(path: Path, model: type[Record], shown: str) -> Iterator[pa.Table]:
    # Pieces of whole lines, each read by pyarrow on its own: its streaming reader
    # reads ahead as far as it can (the whole 409 MB statements file at 1M), so
    # memory would grow with the file.
    first = 1
    for piece, lines in _checked_pieces(path, shown):
        raw = _read_piece(pa.py_buffer(piece), model)
        if raw is not None:  # a piece past BLOCK_SIZE by its carried line: still one chunk
            raw = raw.combine_chunks()
        if raw is None or raw.num_rows != lines:  # bad JSON, or blank lines
            unread = Problem(shown, message="holds lines that are not one JSON object each")
            raise Unsure(_line_problems(path, model, shown) or [unread])
        problems = _rule_problems(raw, model, shown, first)[0]
        if problems:
            raise Unsure(problems)
        yield _published(raw, model)
        first += lines


def _checked_pieces(path: Path, shown: str) -> Iterator[tuple[memoryview, int]]:
    """inputs.line_pieces of a bulk file, its problems as the build reports them."""
    try:
        inputs.check_file(path, inputs.JSONL_MAX_BYTES, "a bulk file")
        yield from inputs.line_pieces(path, BLOCK_SIZE)
    except inputs.InputProblem as exc:
        raise Unsure([Problem(shown, exc.line, exc.column, message=exc.message)]) from None
