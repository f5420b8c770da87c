"""Read records/*.yaml into validated models, reporting every problem with file:line:column."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .models import (
    MODEL_BY_TABLE,
    MODELS,
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


# Dates and times stay text, so the models can say exactly what is wrong with them.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> _Mapping:
    loader.flatten_mapping(node)
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


def _read_yaml(path: Path, shown: str) -> tuple[Any, list[Problem]]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        return None, [
            Problem(shown, 1, 1, message="starts with a byte-order mark; save as UTF-8 without BOM")
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(shown, line, 1, message="is not UTF-8 text; save it as UTF-8")]
    for number, line_text in enumerate(text.splitlines(), start=1):
        if "\t" in line_text:
            column = line_text.index("\t") + 1
            return None, [Problem(shown, number, column, message="holds a tab; indent with spaces")]
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        return None, [Problem(shown, 1, 1, message="is empty; give at least one table of records")]
    try:
        return yaml.load(text, Loader=_Loader), []  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(filter(None, [exc.context, exc.problem]))
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
        line, column = data.key_marks.get(name, (data.line, data.column))
        problems.append(Problem(shown, line, column, model.table, rid, name, message))
    return problems


def _suggest(value: str, choices: Iterable[str]) -> str:
    near = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.75)
    return f"; did you mean '{near[0]}'?" if near else ""


def load_records(records_dir: Path, cross_check: bool = True) -> Records:
    """Read and validate every records file; raise RecordsError listing every problem.

    With cross_check=False the checks across records are left to the caller
    (bulk.read_tables runs them over the YAML and bulk rows together).
    """
    problems: list[Problem] = []
    tables: dict[str, list[Located]] = {m.table: [] for m in MODELS}
    base = records_dir.parent
    present = sorted(records_dir.glob("*.yaml")) + sorted(records_dir.glob("*.yml"))
    for name in RECORD_FILES:
        if not (records_dir / name).exists():
            problems.append(Problem(_show(records_dir / name, base), message="is missing"))
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
            continue
        if not isinstance(data, _Mapping):
            problems.append(
                Problem(shown, 1, 1, message="must be a mapping of table name to a list of records")
            )
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
                    continue
                try:
                    record = model.model_validate(row)
                except ValidationError as exc:
                    problems += _model_problems(exc, model, row, shown)
                    continue
                tables[table].append(
                    Located(record, shown, row.line, row.column, dict(row.key_marks))
                )
    records = Records(tables)
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
        for name, (target, _) in model.foreign_keys.items():
            known = keys[target]
            for loc in located:
                value = getattr(loc.record, name)
                if value is not None and value not in known:
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
    problems += _check_preferred(records, "person_names", "person_id")
    problems += _check_names(records)
    problems += _check_participations(records, keys)
    return problems


def _check_parent_cycles(records: Records, keys: dict[str, dict[str, Located]]) -> list[Problem]:
    problems = []
    for table, parent_field in (
        ("organisations", "parent_organisation_id"),
        ("events", "parent_event_id"),
    ):
        parent = {
            loc.record.key: getattr(loc.record, parent_field) for loc in records.tables[table]
        }
        for loc in records.tables[table]:
            start = loc.record.key
            seen = {start}
            current = parent.get(start)
            while current is not None and current in parent:
                if current == start:
                    line, column = loc.mark(parent_field)
                    problems.append(
                        Problem(
                            loc.path,
                            line,
                            column,
                            table,
                            start,
                            parent_field,
                            f"parents loop back to '{start}'; break the loop",
                        )
                    )
                    break
                if current in seen:
                    break
                seen.add(current)
                current = parent.get(current)
    return problems


def _check_preferred(records: Records, table: str, group_field: str) -> list[Problem]:
    groups: dict[str, list[Located]] = defaultdict(list)
    for loc in records.tables[table]:
        groups[getattr(loc.record, group_field)].append(loc)
    problems = []
    for group, members in groups.items():
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
