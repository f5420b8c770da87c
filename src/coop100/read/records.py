"""Read records/ into validated models: the YAML reader of the records.

The records are laid out the way people add data: the package's own words in
records/package.yaml; registries in which each source, organisation, person
(with their spellings and roles) and topic stands once, however many events
they belong to; and one file per event under records/events/, holding the event,
its parts (sessions, interviews), who took part, what was said and its topics.
Adding an event is one new file, plus registry rows for whom it is the first.

Each record is validated by its model (models.py) as it is read, and every problem
is reported at its `file:line:column`. The rules across records (integrity.py)
run over the Arrow form of what was read; this reader places what they find at
the record and field they name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import yaml
from pydantic import ValidationError

from coop100 import settings
from coop100.problems import Problem, RecordsError
from coop100.read import inputs
from coop100.rules.integrity import Failed, check_tables, place, suggest
from coop100.rules.models import MODEL_BY_TABLE, MODELS, About, Record
from coop100.rules.tables import to_arrow

# The package's own words (models.About).
PACKAGE_FILE = "package.yaml"
# The registries, and which tables each may hold.
RECORD_FILES: dict[str, tuple[str, ...]] = {
    "sources.yaml": ("sources",),
    "organisations.yaml": ("organisations", "organisation_names"),
    "people.yaml": ("people", "person_names", "affiliations"),
    "topics.yaml": ("topics",),
}
# One file per event, named after it: records/events/<event_id>.yaml.
EVENTS_DIR = "events"
EVENT_TABLES = ("events", "participations", "statements", "statement_topics")
EVENT_FILE = f"{EVENTS_DIR}/<event_id>.yaml"
FILE_OF_TABLE = {table: name for name, tables in RECORD_FILES.items() for table in tables} | {
    table: EVENT_FILE for table in EVENT_TABLES
}


@dataclass
class Located:
    """A validated record and where it stands in its file."""

    record: Record
    path: str
    line: int
    column: int
    field_marks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def mark(self, name: str) -> tuple[int, int]:
        return self.field_marks.get(name, (self.line, self.column))


@dataclass
class Records:
    """Every validated record, table by table, in file order, and the package's words."""

    tables: dict[str, list[Located]]
    about: About | None = None
    # Rows that failed their model and tables whose file could not be read: the
    # checks across records treat what they may hold as present, so one mistake
    # is reported once, not again at every row that refers to it.
    invalid: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)

    def rows(self, table: str) -> list[Record]:
        return [loc.record for loc in self.tables.get(table, [])]

    def arrow_tables(self) -> dict[str, pa.Table]:
        """Every table's valid records as Arrow, in file order."""
        return {m.table: to_arrow(m, self.rows(m.table)) for m in MODELS}

    def failed(self) -> Failed:
        """What the checks across records take as present though it failed."""
        return Failed(self.invalid, self.unread)

    def where(self, table: str, row: int, name: str) -> tuple[str, int, int]:
        """File, line and column of a field of a record (of the record itself for '')."""
        loc = self.tables[table][row]
        return (loc.path, *loc.mark(name))

    def check_across(self) -> list[Problem]:
        """The checks across records (integrity.py), placed in the YAML files."""
        tables = self.arrow_tables()
        return list(place(check_tables(tables, self.failed()), tables, self.where))


# -- YAML ----------------------------------------------------------------------


class PlacedMapping(dict[str, Any]):
    """A YAML mapping that remembers where it and each of its keys stand (1-based)."""

    line: int = 0
    column: int = 0
    key_marks: dict[str, tuple[int, int]]


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys, keeps positions and reads dates as text."""


# Plain scalars are read by the YAML 1.2 core schema, not PyYAML's YAML 1.1 one:
# only true/false are booleans (country NO stays Norway, `yes` is an error, not
# True), only plain decimals are numbers (13:30 stays a time, not 810 seconds),
# and dates and times stay text, so the models can say exactly what is wrong.
_CORE_SCHEMA = {
    "tag:yaml.org,2002:bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "tag:yaml.org,2002:int": (r"^[-+]?[0-9]+$", "-+0123456789"),
    "tag:yaml.org,2002:float": (
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
}
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, (_pattern, _firsts) in _CORE_SCHEMA.items():
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_firsts))


def _construct_mapping(
    loader: _Loader, node: yaml.MappingNode, deep: bool = False
) -> PlacedMapping:
    loader.flatten_mapping(node)
    problem = inputs.too_many_keys(len(node.value))
    if problem:
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
    result = PlacedMapping()
    result.line, result.column = node.start_mark.line + 1, node.start_mark.column + 1
    result.key_marks = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is not text", key_node.start_mark
            )
        if key in result:
            first = result.key_marks[key][0]
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{key}' (first given on line {first}); keep one",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_marks[key] = mark
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    try:
        return inputs.whole_number(loader.construct_scalar(node))
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> str:
    text = loader.construct_scalar(node)
    problem = inputs.surrogate_problem(text)
    if problem:
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
    return text


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """_Loader's rules on libyaml's C parser: the same values, several times faster.

    Its error messages are terser, so a file it refuses is read again by
    _Loader to say what is wrong.
    """


_FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_FastLoader.yaml_constructors = _Loader.yaml_constructors


def _read_yaml(path: Path, shown: str) -> tuple[Any, list[Problem]]:
    try:
        raw = inputs.read_capped(path, inputs.YAML_MAX_BYTES, "a records file")
    except inputs.InputProblem as exc:
        return None, [Problem(shown, message=exc.message)]
    if raw.startswith(inputs.BOM):
        return None, [Problem(shown, 1, 1, message=inputs.HAS_BOM)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(shown, line, 1, message=inputs.NOT_UTF8)]
    for number, line_text in enumerate(text.splitlines(), start=1):
        if "\t" in line_text:
            column = line_text.index("\t") + 1
            return None, [Problem(shown, number, column, message="holds a tab; indent with spaces")]
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        return None, [Problem(shown, 1, 1, message="is empty; give at least one table of records")]
    try:
        inputs.check_yaml_structure(text, _FastLoader)
    except inputs.InputProblem as exc:
        return None, [Problem(shown, exc.line, exc.column, message=exc.message)]
    try:
        return yaml.load(text, Loader=_FastLoader), []  # noqa: S506 - a SafeLoader
    except yaml.YAMLError:
        pass
    try:
        return yaml.load(text, Loader=_Loader), []  # noqa: S506 - _Loader is a SafeLoader
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [
            Problem(shown, line, column, message=f"holds the control character {char}; remove it")
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(filter(None, [exc.context, exc.problem]))
        if isinstance(exc, yaml.constructor.ConstructorError):
            return None, [Problem(shown, line, column, message=what)]
        if what == "mapping values are not allowed here":
            what += "; quote a value that holds ': '"
        return None, [Problem(shown, line, column, message=f"YAML syntax: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem(shown, 1, 1, message=f"YAML syntax: {exc}")]


# -- records ---------------------------------------------------------------------


def _record_id(model: type[Record], data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    return "/".join(str(data.get(f, "?")) for f in model.primary_key)


def model_problems(
    exc: ValidationError, model: type[Record] | type[About], data: PlacedMapping, shown: str
) -> list[Problem]:
    """One problem per error pydantic found in a record, placed at its file, line and field.

    The YAML reader and the bulk reader (coop100.read.bulk) both report through it.
    """
    problems = []
    table = model.table if issubclass(model, Record) else ""
    rid = _record_id(model, data) if issubclass(model, Record) else ""
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        message = err["msg"].removeprefix("Value error, ")
        if not name and ": " in message and message.split(": ", 1)[0] in model.model_fields:
            name, message = message.split(": ", 1)
        if err["type"] == "missing":
            message = "is required but missing"
        elif err["type"] == "extra_forbidden":
            message = f"is not a field of {table or 'the package'}" + _suggest(
                name, model.model_fields
            )
        elif err["type"] in ("enum", "literal_error"):
            message = f"{err['input']!r} is not allowed: {err['msg'].split('Input should be ')[-1]}"
        elif err["type"] in ("int_type", "int_parsing", "int_from_float"):
            message = f"must be a whole number, not {err['input']!r}"
        elif err["type"] in ("bool_type", "bool_parsing"):
            message = f"must be true or false, not {err['input']!r}"
        elif err["type"] in ("too_long", "string_too_long"):
            ctx = err.get("ctx", {})
            message = (
                f"is {ctx.get('actual_length', len(err['input']))} characters long; "
                f"at most {ctx['max_length']} are allowed"
            )
        elif err["type"] in ("greater_than_equal", "less_than_equal"):
            ctx = err.get("ctx", {})
            bound = f"at least {ctx['ge']}" if "ge" in ctx else f"at most {ctx['le']}"
            message = f"{err['input']!r} is out of range: must be {bound}"
        line, column = data.key_marks.get(name, (data.line, data.column))
        problems.append(Problem(shown, line, column, table, rid, name, message))
    return problems


def _suggest(value: str, choices: Iterable[str]) -> str:
    hint = suggest(value, choices)
    return f"; {hint}" if hint else ""


def load_records(records_dir: Path) -> Records:
    """Read and check every records file; raise RecordsError listing every problem."""
    records, problems = read_records(records_dir)
    problems += records.check_across()
    if problems:
        raise RecordsError(problems)
    return records


def read_records(records_dir: Path) -> tuple[Records, list[Problem]]:
    """Read every records file and validate each record against its model.

    The checks across records are the caller's (Records.check_across), so a
    caller with more records (bulk.read_tables) runs them over all at once.
    """
    records = Records({m.table: [] for m in MODELS}, None, {m.table: [] for m in MODELS})
    base = records_dir.parent
    problems = []
    for name, tables in [*RECORD_FILES.items(), (PACKAGE_FILE, ())]:
        if not os.path.lexists(records_dir / name):  # one that is not a file: see _read_yaml
            problems.append(Problem(shown_path(records_dir / name, base), message="is missing"))
            records.unread.update(tables)
    for path in sorted(records_dir.glob("*.yaml")) + sorted(records_dir.glob("*.yml")):
        if path.name == PACKAGE_FILE:
            records.about, read = _read_about(path, shown_path(path, base))
            problems += read
        else:
            problems += _read_file(
                path, shown_path(path, base), records, RECORD_FILES.get(path.name)
            )
    events = records_dir / EVENTS_DIR
    # By event id, so an event comes before the parts named after it (its-id-part).
    found = [*events.glob("*.yaml"), *events.glob("*.yml")] if events.is_dir() else []
    paths = sorted(found, key=lambda p: (p.stem, p.suffix))
    if not paths:
        message = f"holds no event; add one file per event, {EVENT_FILE}"
        problems.append(Problem(shown_path(events, base), message=message))
        records.unread.update(EVENT_TABLES)
    for path in paths:
        problems += _read_file(path, shown_path(path, base), records, EVENT_TABLES)
    return records, problems


def read_about(records_dir: Path) -> About:
    """The package's own words, from records/package.yaml; raise RecordsError if they are wrong."""
    about, problems = _read_about(
        records_dir / PACKAGE_FILE, shown_path(records_dir / PACKAGE_FILE, records_dir.parent)
    )
    if about is None:
        raise RecordsError(problems)
    return about


def _read_about(path: Path, shown: str) -> tuple[About | None, list[Problem]]:
    data, problems = _read_yaml(path, shown)
    if not problems and not isinstance(data, PlacedMapping):
        problems = [Problem(shown, 1, 1, message="must be a mapping of the package's fields")]
    if problems:
        return None, problems
    try:
        about = About.model_validate(data)
    except ValidationError as exc:
        return None, model_problems(exc, About, data, shown)
    site = os.environ.get(settings.SITE_URL_ENV)
    if site is None:
        return about, []
    if not _site_address(site):
        return None, [
            Problem(
                settings.SITE_URL_ENV,
                message=f"{site!r} is not a site address",
                hint="give http(s)://host[:port] with no path, query or trailing slash,"
                " or unset it to use homepage in records/package.yaml",
            )
        ]
    return about.model_copy(update={"homepage": site}), []


def _site_address(value: str) -> bool:
    """Whether value is http(s)://host[:port] and nothing more (a test server's address)."""
    parts = urlsplit(value)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.path or parts.query or parts.fragment or parts.username)
        and value == f"{parts.scheme}://{parts.netloc}"
    )


def _read_file(
    path: Path, shown: str, records: Records, allowed: tuple[str, ...] | None
) -> list[Problem]:
    if allowed is None:
        names = [*RECORD_FILES, PACKAGE_FILE]
        expected = ", ".join(names) + f" or records/{EVENT_FILE}" + _suggest(path.name, names)
        message = f"is not a records file; expected one of {expected}"
        return [Problem(shown, message=message)]
    data, problems = _read_yaml(path, shown)
    if not problems and not isinstance(data, PlacedMapping):
        message = "must be a mapping of table name to a list of records"
        problems = [Problem(shown, 1, 1, message=message)]
    if problems:
        records.unread.update(allowed)
        return problems
    for table, rows in data.items():
        problems += _read_table(table, rows, allowed, data.key_marks[table], shown, records)
    if allowed is EVENT_TABLES and not problems:
        problems += _names_its_event(path, shown, data)
    return problems


def _names_its_event(path: Path, shown: str, data: PlacedMapping) -> list[Problem]:
    """An event file is named after the event it holds, so its name finds it.

    A file that holds no event row (its rows are in records/bulk/) is not judged.
    """
    events = data.get("events")
    ids = [row.get("event_id") for row in events or [] if isinstance(row, dict)]
    if not ids or path.stem in ids:
        return []
    mark = data.key_marks.get("events", (1, 1))
    held = ", ".join(map(repr, ids))
    message = f"an event file holds the event it is named after, '{path.stem}'; it holds {held}"
    return [Problem(shown, *mark, message=message)]


def _read_table(
    table: str,
    rows: Any,
    allowed: tuple[str, ...],
    mark: tuple[int, int],
    shown: str,
    records: Records,
) -> list[Problem]:
    if table not in allowed:
        if table in FILE_OF_TABLE:
            hint = f"{table} belong in records/{FILE_OF_TABLE[table]}"
        else:
            hint = "expected " + ", ".join(allowed) + _suggest(table, MODEL_BY_TABLE)
        return [Problem(shown, *mark, message=f"unknown top-level key '{table}': {hint}")]
    if not isinstance(rows, list):
        records.unread.add(table)
        return [Problem(shown, *mark, table, message="must be a list of records")]
    problems = []
    for row in rows:
        problems += _read_record(MODEL_BY_TABLE[table], row, mark, shown, records)
    return problems


def _read_record(
    model: type[Record], row: Any, mark: tuple[int, int], shown: str, records: Records
) -> list[Problem]:
    if not isinstance(row, PlacedMapping):
        records.unread.add(model.table)
        message = f"each record must be a mapping, not {row!r}"
        return [Problem(shown, *mark, model.table, message=message)]
    try:
        record = model.model_validate(row)
    except ValidationError as exc:
        records.invalid[model.table].append(row)
        return model_problems(exc, model, row, shown)
    located = Located(record, shown, row.line, row.column, dict(row.key_marks))
    records.tables[model.table].append(located)
    return []


def shown_path(path: Path, base: Path) -> str:
    """The path as an error shows it: relative to base where it lies under it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
