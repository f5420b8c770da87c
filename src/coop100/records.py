"""Read records/*.yaml into validated models, reporting every problem with file:line:column."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import inputs
from .models import (
    MODEL_BY_TABLE,
    MODELS,
    S1_PARAGRAPHS,
    Affiliation,
    Participation,
    Person,
    PersonName,
    Record,
)

# Which tables each records file may hold.
RECORD_FILES: dict[str, tuple[str, ...]] = {
    "sources.yaml": ("sources",),
    "organisations.yaml": ("organisations",),
    "people.yaml": ("people", "person_names"),
    "affiliations.yaml": ("affiliations",),
    "events.yaml": ("events",),
    "participations.yaml": ("participations",),
    "statements.yaml": ("statements",),
    "topics.yaml": ("topics", "statement_topics"),
}
FILE_OF_TABLE = {table: name for name, tables in RECORD_FILES.items() for table in tables}


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the records, located as precisely as we can."""

    path: str
    line: int = 0
    column: int = 0
    table: str = ""
    record: str = ""
    field: str = ""
    message: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        what = ""
        if self.table:
            what += f"{self.table} '{self.record}' " if self.record else f"{self.table} "
        if self.field:
            what += f"field '{self.field}'"
        return f"{where}: {what.strip()}: {self.message}" if what else f"{where}: {self.message}"


class RecordsError(Exception):
    """The records hold problems; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


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
    """Every validated record, table by table, in file order."""

    tables: dict[str, list[Located]]
    # Rows that failed their model and tables whose file could not be read: the
    # checks across records treat what they may hold as present, so one mistake
    # is reported once, not again at every row that refers to it.
    invalid: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)

    def rows(self, table: str) -> list[Record]:
        return [loc.record for loc in self.tables.get(table, [])]


# -- YAML ----------------------------------------------------------------------


class _Mapping(dict[str, Any]):
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


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> _Mapping:
    loader.flatten_mapping(node)
    problem = inputs.too_many_keys(len(node.value))
    if problem:
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
    result = _Mapping()
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


def _model_problems(
    exc: ValidationError, model: type[Record], data: _Mapping, shown: str
) -> list[Problem]:
    problems = []
    rid = _record_id(model, data)
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        message = err["msg"].removeprefix("Value error, ")
        if not name and ": " in message and message.split(": ", 1)[0] in model.model_fields:
            name, message = message.split(": ", 1)
        if err["type"] == "missing":
            message = "is required but missing"
        elif err["type"] == "extra_forbidden":
            message = f"is not a field of {model.table}" + _suggest(name, model.model_fields)
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
            if name == "paragraph":
                message += f" (S1 has {S1_PARAGRAPHS} paragraphs)"
        line, column = data.key_marks.get(name, (data.line, data.column))
        problems.append(Problem(shown, line, column, model.table, rid, name, message))
    return problems


def _suggest(value: str, choices: Iterable[str]) -> str:
    import difflib  # only a mistake needs it

    near = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.75)
    return f"; did you mean '{near[0]}'?" if near else ""


def load_records(records_dir: Path, cross_check: bool = True) -> Records:
    """Read and validate every records file; raise RecordsError listing every problem.

    With cross_check=False the checks across records are left to the caller
    (bulk.read_tables runs them over the YAML and bulk rows together).
    """
    problems: list[Problem] = []
    tables: dict[str, list[Located]] = {m.table: [] for m in MODELS}
    invalid: dict[str, list[dict[str, Any]]] = {m.table: [] for m in MODELS}
    unread: set[str] = set()
    base = records_dir.parent
    present = sorted(records_dir.glob("*.yaml")) + sorted(records_dir.glob("*.yml"))
    for name in RECORD_FILES:
        if not os.path.lexists(records_dir / name):  # one that is not a file: see _read_yaml
            problems.append(Problem(_show(records_dir / name, base), message="is missing"))
            unread.update(RECORD_FILES[name])
    for path in present:
        shown = _show(path, base)
        if path.name not in RECORD_FILES:
            problems.append(
                Problem(
                    shown,
                    message="is not a records file; expected one of "
                    + ", ".join(RECORD_FILES)
                    + _suggest(path.name, RECORD_FILES),
                )
            )
            continue
        data, errors = _read_yaml(path, shown)
        problems += errors
        if errors:
            unread.update(RECORD_FILES[path.name])
            continue
        if not isinstance(data, _Mapping):
            problems.append(
                Problem(shown, 1, 1, message="must be a mapping of table name to a list of records")
            )
            unread.update(RECORD_FILES[path.name])
            continue
        for table, rows in data.items():
            line, column = data.key_marks[table]
            if table not in RECORD_FILES[path.name]:
                if table in FILE_OF_TABLE:
                    hint = f"{table} belong in records/{FILE_OF_TABLE[table]}"
                else:
                    hint = (
                        "expected "
                        + ", ".join(RECORD_FILES[path.name])
                        + _suggest(table, MODEL_BY_TABLE)
                    )
                problems.append(
                    Problem(shown, line, column, message=f"unknown top-level key '{table}': {hint}")
                )
                continue
            if not isinstance(rows, list):
                problems.append(
                    Problem(shown, line, column, table, message="must be a list of records")
                )
                unread.add(table)
                continue
            model = MODEL_BY_TABLE[table]
            for row in rows:
                if not isinstance(row, _Mapping):
                    problems.append(
                        Problem(
                            shown,
                            line,
                            column,
                            table,
                            message=f"each record must be a mapping, not {row!r}",
                        )
                    )
                    unread.add(table)
                    continue
                try:
                    record = model.model_validate(row)
                except ValidationError as exc:
                    problems += _model_problems(exc, model, row, shown)
                    invalid[table].append(row)
                    continue
                tables[table].append(
                    Located(record, shown, row.line, row.column, dict(row.key_marks))
                )
    records = Records(tables, invalid, unread)
    if cross_check:
        problems += check_references(records)
    if problems:
        raise RecordsError(problems)
    return records


def _show(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


# -- checks across records ---------------------------------------------------------


def check_references(records: Records) -> list[Problem]:
    """Check what no single record can: unique keys, references, cycles, preferred claims."""
    problems: list[Problem] = []
    keys: dict[str, dict[str, Located]] = {}
    for table, located in records.tables.items():
        seen: dict[str, Located] = {}
        for loc in located:
            key = loc.record.key
            if key in seen:
                first = seen[key]
                name = loc.record.primary_key[-1]
                line, column = loc.mark(name)
                problems.append(
                    Problem(
                        loc.path,
                        line,
                        column,
                        table,
                        key,
                        name,
                        f"duplicate id (first at {first.path}:{first.line}); give each its own id",
                    )
                )
            else:
                seen[key] = loc
        keys[table] = seen

    for table, located in records.tables.items():
        model = MODEL_BY_TABLE[table]
        for name, (target, target_field) in model.foreign_keys.items():
            if target in records.unread:
                continue
            known = keys[target]
            failed = {str(row.get(target_field)) for row in records.invalid.get(target, [])}
            for loc in located:
                value = getattr(loc.record, name)
                if value is not None and value not in known and value not in failed:
                    line, column = loc.mark(name)
                    problems.append(
                        Problem(
                            loc.path,
                            line,
                            column,
                            table,
                            loc.record.key,
                            name,
                            f"'{value}' is not a known {target} id{_suggest(value, known)}",
                        )
                    )

    problems += _check_parent_cycles(records, keys)
    problems += _check_preferred(records, "affiliations", "claim_key")
    problems += _check_preferred(records, "person_names", "person_id", set(keys["people"]))
    problems += _check_names(records)
    problems += _check_participations(records, keys)
    return problems


# (table, id field, parent field) of the tables whose rows nest.
PARENT_LINKS = (
    ("organisations", "organisation_id", "parent_organisation_id"),
    ("events", "event_id", "parent_event_id"),
)


def loops_back(parent: dict[str, str | None], start: str) -> bool:
    """Whether following parent links from start comes back to start."""
    seen = {start}
    current = parent.get(start)
    while current is not None and current in parent:
        if current == start:
            return True
        if current in seen:
            return False  # a loop further up, reported from its own rows
        seen.add(current)
        current = parent.get(current)
    return False


def loop_message(start: str) -> str:
    return f"parents loop back to '{start}'; break the loop"


def _check_parent_cycles(records: Records, keys: dict[str, dict[str, Located]]) -> list[Problem]:
    problems = []
    for table, _, parent_field in PARENT_LINKS:
        parent = {
            loc.record.key: getattr(loc.record, parent_field) for loc in records.tables[table]
        }
        for loc in records.tables[table]:
            start = loc.record.key
            if loops_back(parent, start):
                line, column = loc.mark(parent_field)
                problems.append(
                    Problem(loc.path, line, column, table, start, parent_field, loop_message(start))
                )
    return problems


def _check_preferred(
    records: Records, table: str, group_field: str, known: set[str] | None = None
) -> list[Problem]:
    if table in records.unread:
        return []
    groups: dict[str, list[Located]] = defaultdict(list)
    for loc in records.tables[table]:
        groups[getattr(loc.record, group_field)].append(loc)
    failed = {str(row.get(group_field)) for row in records.invalid.get(table, [])}
    problems = []
    for group, members in groups.items():
        # A dangling group (already reported) or one holding a row that failed its
        # model cannot be judged until that is fixed.
        if group in failed or (known is not None and group not in known):
            continue
        chosen = [m for m in members if getattr(m.record, "preferred")]  # noqa: B009
        if len(chosen) == 1:
            continue
        culprits = chosen[1:] if chosen else members[:1]
        for loc in culprits:
            line, column = loc.mark("preferred")
            if chosen:
                message = (
                    f"{len(chosen)} rows with {group_field} '{group}' are preferred "
                    f"(first {chosen[0].record.key}); mark exactly one"
                )
            else:
                message = f"no row with {group_field} '{group}' is preferred; mark exactly one"
            problems.append(
                Problem(loc.path, line, column, table, loc.record.key, "preferred", message)
            )
    return problems


def _check_names(records: Records) -> list[Problem]:
    preferred = {
        r.person_id: r.name
        for r in records.rows("person_names")
        if isinstance(r, PersonName) and r.preferred
    }
    problems = []
    for loc in records.tables["people"]:
        person = loc.record
        assert isinstance(person, Person)
        if person.person_id in preferred and preferred[person.person_id] != person.name:
            line, column = loc.mark("name")
            problems.append(
                Problem(
                    loc.path,
                    line,
                    column,
                    "people",
                    person.key,
                    "name",
                    f"'{person.name}' differs from the preferred spelling "
                    f"'{preferred[person.person_id]}' in person_names; make them equal",
                )
            )
    return problems


def _check_participations(records: Records, keys: dict[str, dict[str, Located]]) -> list[Problem]:
    problems = []
    for loc in records.tables["participations"]:
        part = loc.record
        assert isinstance(part, Participation)
        target = keys["affiliations"].get(part.affiliation_id or "")
        if target is None:
            continue
        affiliation = target.record
        assert isinstance(affiliation, Affiliation)
        if affiliation.person_id not in keys["people"] or part.person_id not in keys["people"]:
            continue  # already reported as a dangling person_id
        if affiliation.person_id != part.person_id:
            line, column = loc.mark("affiliation_id")
            problems.append(
                Problem(
                    loc.path,
                    line,
                    column,
                    "participations",
                    part.key,
                    "affiliation_id",
                    f"'{part.affiliation_id}' belongs to '{affiliation.person_id}', "
                    f"not '{part.person_id}'",
                )
            )
    return problems
