"""Models -> Arrow tables and Table Schemas: the one place column order and types live."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from annotated_types import Ge, Le, MaxLen
from pydantic.fields import FieldInfo

from coop100.rules.models import Record, Sourced

TABLE_SCHEMA_PROFILE = "https://datapackage.org/profiles/2.0/tableschema.json"


@dataclass(frozen=True)
class Column:
    """One column of a published table, as every output format sees it."""

    name: str
    frictionless_type: str
    arrow_type: pa.DataType
    required: bool
    description: str
    enum: tuple[str, ...] = ()
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Return the core type of a field annotation and whether None is allowed."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        (annotation,) = args
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation, nullable


_TYPES: dict[type, tuple[str, pa.DataType]] = {
    bool: ("boolean", pa.bool_()),
    int: ("integer", pa.int64()),
    str: ("string", pa.string()),
    dt.date: ("date", pa.date32()),
    dt.time: ("time", pa.time32("ms")),
}


def _max_length(info: FieldInfo, annotation: Any) -> int | None:
    found = [m.max_length for m in field_metadata(info, annotation) if isinstance(m, MaxLen)]
    return min(found) if found else None


def field_metadata(info: FieldInfo, annotation: Any) -> list[Any]:
    """Every constraint and Check on a field, however deep in its Annotated types."""
    found = list(info.metadata)
    inner = annotation
    if typing.get_origin(inner) in (typing.Union, types.UnionType):
        inner = next(a for a in typing.get_args(inner) if a is not type(None))
    while typing.get_origin(inner) is typing.Annotated:
        args = typing.get_args(inner)
        for meta in args[1:]:
            found += list(meta.metadata) if isinstance(meta, FieldInfo) else [meta]
        inner = args[0]
    return found


def _bound(info: FieldInfo, annotation: Any, kind: type, attr: str) -> int | None:
    values = [getattr(m, attr) for m in field_metadata(info, annotation) if isinstance(m, kind)]
    return values[0] if values else None


# Cached: a build asks for each table's columns several times and the models never change.
@functools.cache
def columns(model: type[Record]) -> tuple[Column, ...]:
    """The columns of a model's table, in field order."""
    result = []
    # Identifiers and content first; the provenance every row shares goes last.
    shared = list(Sourced.model_fields) if issubclass(model, Sourced) else []
    names = [n for n in model.model_fields if n not in shared] + shared
    for name in names:
        info = model.model_fields[name]
        annotation = info.annotation
        core, nullable = _unwrap(annotation)
        choices: tuple[str, ...] = ()
        if isinstance(core, type) and issubclass(core, enum.Enum):
            choices = tuple(str(m.value) for m in core)
            core = str
        ftype, atype = _TYPES[core]
        if info.description is None:
            raise TypeError(f"{model.__name__}.{name} has no description")
        result.append(
            Column(
                name=name,
                frictionless_type=ftype,
                arrow_type=atype,
                required=info.is_required() and not nullable,
                description=info.description,
                enum=choices,
                max_length=_max_length(info, annotation) if core is str else None,
                minimum=_bound(info, annotation, Ge, "ge"),
                maximum=_bound(info, annotation, Le, "le"),
            )
        )
    return tuple(result)


@functools.cache
def arrow_schema(model: type[Record]) -> pa.Schema:
    """Arrow schema of a table, each field carrying its description."""
    return pa.schema(
        [
            pa.field(
                c.name,
                c.arrow_type,
                nullable=not c.required,
                metadata={"description": c.description},
            )
            for c in columns(model)
        ]
    )


def table_schema(model: type[Record]) -> dict[str, Any]:
    """Frictionless Table Schema (v2) of a table."""
    fields = []
    for c in columns(model):
        spec: dict[str, Any] = {
            "name": c.name,
            "type": c.frictionless_type,
            "description": c.description,
        }
        if c.frictionless_type == "time":
            spec["format"] = "%H:%M:%S"
        if c.frictionless_type == "integer" and not c.required:
            # frictionless reads a null in a Parquet integer column as float NaN;
            # "nan" is never a valid integer, so this only lets real nulls through.
            spec["missingValues"] = ["", "nan"]
        constraints: dict[str, Any] = {}
        if c.required:
            constraints["required"] = True
        if c.enum:
            constraints["enum"] = list(c.enum)
        if c.max_length is not None:
            constraints["maxLength"] = c.max_length
        if c.minimum is not None:
            constraints["minimum"] = c.minimum
        if c.maximum is not None:
            constraints["maximum"] = c.maximum
        if constraints:
            spec["constraints"] = constraints
        if c.enum:
            # Data Package v2 `categories`, which R's and other v2 readers turn into
            # factors; frictionless (5.21) keeps it but checks the enum above.
            spec["categories"] = list(c.enum)
        fields.append(spec)
    schema: dict[str, Any] = {
        "$schema": TABLE_SCHEMA_PROFILE,
        "title": model.table_title,
        "description": model.table_description,
        "fields": fields,
        "primaryKey": list(model.primary_key),
        "missingValues": [""],
    }
    if model.foreign_keys:
        schema["foreignKeys"] = [
            {"fields": [name], "reference": {"resource": target, "fields": [target_field]}}
            for name, (target, target_field) in model.foreign_keys.items()
        ]
    return schema


def to_arrow(model: type[Record], rows: Iterable[Record]) -> pa.Table:
    """Turn validated records into an Arrow table with the published schema."""
    schema = arrow_schema(model)
    data: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        values = row.__dict__
        for name, column in data.items():
            column.append(values[name])
    return pa.Table.from_pydict(data, schema=schema)
