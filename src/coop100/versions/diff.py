"""Row-level diff of two Data Packages by primary key, with their schema changes.

`diff_packages(old, new)` returns a `PackageDiff`; `.to_json()` and
`.to_markdown(max_rows=...)` render it. A package is a folder holding
datapackage.json, a zip of one, or the http(s) URL of a descriptor.

The model follows daff and csv-diff: rows are matched by the primary key
(daff's "keys" mode, csv-diff's `--key`), each table reports added, removed
and changed rows, a changed row lists each changed field with its old and new
value, and column changes are reported apart from the rows. The matching is
an Arrow hash join of the key columns and a columnwise comparison of the
matched rows, so two 1M-statement packages diff in seconds
(benchmarks/diff_bench.py).
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from coop100.settings import DESCRIPTOR

# Descriptor properties that change with every build or release and say nothing
# about the data: left out of the metadata changes.
_VOLATILE = frozenset({"version", "created", "coop100:released"})
# Resource properties that follow from the files (compared through the rows).
_FILE_PROPERTIES = frozenset(
    {"path", "bytes", "hash", "coop100:bytes", "coop100:hash", "schema", "name"}
)
# Field properties whose change is a change of type (Data Package Version: MAJOR).
_TYPE_PROPERTIES = ("type", "format")
_URL_TIMEOUT_S = 60
_HTTP_MAX_BYTES = 4 << 30


class DiffError(Exception):
    """A package could not be read; the message names it and says why."""


# -- reading a package from a folder, a zip or a URL ---------------------------------


class _Location:
    """Where a package's files are: `read(rel)` returns the bytes of one of them."""

    def __init__(self, source: str | Path) -> None:
        self.source = str(source)
        self.folder: Path | None = None
        self.archive: zipfile.ZipFile | None = None
        self.prefix = ""
        self.base_url = ""
        text = self.source
        if text.startswith(("http://", "https://")):
            self.base_url = text if text.endswith("/") else text.rsplit("/", 1)[0] + "/"
            self.descriptor_name = (
                DESCRIPTOR if text.endswith("/") else text.rsplit("/", 1)[1] or DESCRIPTOR
            )
            return
        path = Path(text)
        if path.is_dir():
            self.folder = path
            self.descriptor_name = DESCRIPTOR
        elif path.is_file() and zipfile.is_zipfile(path):
            self.archive = zipfile.ZipFile(path)
            names = [n for n in self.archive.namelist() if posixpath.basename(n) == DESCRIPTOR]
            if not names:
                raise DiffError(f"{text}: the zip holds no {DESCRIPTOR}")
            # The shallowest descriptor is the package's (a zip may have a top folder).
            chosen = min(names, key=lambda n: (n.count("/"), n))
            self.prefix = posixpath.dirname(chosen)
            self.descriptor_name = DESCRIPTOR
        elif path.is_file() and path.name.endswith(".json"):
            self.folder = path.parent
            self.descriptor_name = path.name
        else:
            raise DiffError(
                f"{text}: not a folder holding {DESCRIPTOR}, a zip of a package "
                "or an http(s) URL of a descriptor"
            )

    def read(self, rel: str) -> bytes:
        if ".." in rel.split("/") or rel.startswith("/"):
            raise DiffError(f"{self.source}: resource path {rel!r} leaves the package")
        try:
            if self.folder is not None:
                return (self.folder / rel).read_bytes()
            if self.archive is not None:
                return self.archive.read(posixpath.join(self.prefix, rel) if self.prefix else rel)
            url = urllib.parse.urljoin(self.base_url, rel)
            with urllib.request.urlopen(url, timeout=_URL_TIMEOUT_S) as response:  # noqa: S310
                data: bytes = response.read(_HTTP_MAX_BYTES + 1)
            if len(data) > _HTTP_MAX_BYTES:
                raise DiffError(f"{url}: larger than {_HTTP_MAX_BYTES} bytes")
            return data
        except (OSError, KeyError) as exc:
            raise DiffError(f"{self.source}: cannot read {rel} ({exc})") from None

    def table_source(self, rel: str) -> Any:
        """A path pyarrow can memory-map when local, else the file's bytes."""
        if self.folder is not None:
            path = self.folder / rel
            if not path.is_file():
                raise DiffError(f"{self.source}: {rel} is missing")
            return str(path)
        return pa.BufferReader(self.read(rel))


@dataclass
class _Package:
    location: _Location
    descriptor: dict[str, Any]
    tables: dict[str, dict[str, dict[str, Any]]]  # table name -> format -> resource
    other: dict[str, dict[str, Any]]  # non-table resources by name


def _load(source: str | Path) -> _Package:
    location = _Location(source)
    try:
        descriptor = json.loads(location.read(location.descriptor_name))
    except ValueError as exc:
        raise DiffError(f"{source}: {location.descriptor_name} is not JSON ({exc})") from None
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("resources"), list):
        raise DiffError(f"{source}: {location.descriptor_name} has no resources list")
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    other: dict[str, dict[str, Any]] = {}
    for resource in descriptor["resources"]:
        resource = dict(resource)
        fmt = str(resource.get("format", "")).lower()
        schema = resource.get("schema")
        if isinstance(schema, str):
            try:
                resource["schema"] = json.loads(location.read(schema))
            except ValueError as exc:
                raise DiffError(f"{source}: {schema} is not JSON ({exc})") from None
        if fmt in ("csv", "parquet") and isinstance(resource.get("schema"), dict):
            # A table published twice is <table> and <table>-<format> (our convention).
            name = str(resource["name"]).removesuffix(f"-{fmt}")
            tables.setdefault(name, {})[fmt] = resource
        else:
            other[str(resource.get("name"))] = resource
    return _Package(location, descriptor, tables, other)


_CSV_TYPES = {"integer": pa.int64(), "boolean": pa.bool_(), "date": pa.date32()}


def _read_table(package: _Package, resource: dict[str, Any], fmt: str) -> pa.Table:
    path = resource.get("path")
    if not isinstance(path, str):
        raise DiffError(f"{package.location.source}: resource {resource.get('name')} has no path")
    source = package.location.table_source(path)
    try:
        if fmt == "parquet":
            with pq.ParquetFile(source) as parquet:
                return parquet.read()
        fields = resource["schema"].get("fields", [])
        return pacsv.read_csv(
            source,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    f["name"]: _CSV_TYPES.get(f.get("type", "string"), pa.string()) for f in fields
                },
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["true"],
                false_values=["false"],
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DiffError(f"{package.location.source}: cannot read {path} ({exc})") from None


def _count_rows(package: _Package, resource: dict[str, Any], fmt: str) -> int:
    if fmt == "parquet":
        with pq.ParquetFile(package.location.table_source(resource["path"])) as parquet:
            return int(parquet.metadata.num_rows)
    return int(_read_table(package, resource, fmt).num_rows)


# -- the diff's data structure ------------------------------------------------------------


@dataclass(frozen=True)
class SchemaChange:
    """One change to a table's columns or keys.

    kind is one of: field_added, field_removed, field_renamed, fields_reordered,
    field_retyped, constraints_changed, field_described, primary_key_changed,
    foreign_keys_changed.
    """

    kind: str
    field: str | None = None
    old: Any = None
    new: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class RowChange:
    """One row whose key is in both packages but whose values differ."""

    key: dict[str, Any]
    fields: dict[str, tuple[Any, Any]]  # field -> (old value, new value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "changes": {name: {"old": old, "new": new} for name, (old, new) in self.fields.items()},
        }


@dataclass
class TableDiff:
    """What changed in one table: its schema and its rows, matched by `key`."""

    name: str
    key: list[str]
    schema_changes: list[SchemaChange] = field(default_factory=list)
    added: pa.Table | None = None
    removed: pa.Table | None = None
    changed: list[RowChange] = field(default_factory=list)
    old_rows: int = 0
    new_rows: int = 0
    referenced: bool = False  # another table's foreign key points at this one

    @property
    def added_count(self) -> int:
        return 0 if self.added is None else self.added.num_rows

    @property
    def removed_count(self) -> int:
        return 0 if self.removed is None else self.removed.num_rows

    def __bool__(self) -> bool:
        return bool(self.schema_changes or self.added_count or self.removed_count or self.changed)

    def as_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "rows": {"old": self.old_rows, "new": self.new_rows},
            "counts": {
                "added": self.added_count,
                "removed": self.removed_count,
                "changed": len(self.changed),
            },
            "schema_changes": [c.as_dict() for c in self.schema_changes],
            "added": _rows(self.added, max_rows),
            "removed": _rows(self.removed, max_rows),
            "changed": [c.as_dict() for c in self.changed[:max_rows]],
        }


@dataclass
class PackageDiff:
    """Everything that differs between two packages, table by table."""

    old_version: str | None
    new_version: str | None
    tables: list[TableDiff] = field(default_factory=list)
    tables_added: list[str] = field(default_factory=list)
    tables_removed: list[str] = field(default_factory=list)
    resources_added: list[str] = field(default_factory=list)  # non-table resources
    resources_removed: list[str] = field(default_factory=list)
    resources_changed: list[str] = field(default_factory=list)
    metadata_changes: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def changed_tables(self) -> list[TableDiff]:
        return [t for t in self.tables if t]

    def __bool__(self) -> bool:
        return bool(
            self.changed_tables
            or self.tables_added
            or self.tables_removed
            or self.resources_added
            or self.resources_removed
            or self.resources_changed
            or self.metadata_changes
        )

    def as_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        """The diff as plain JSON-ready data; max_rows caps each list of rows."""
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "tables_added": self.tables_added,
            "tables_removed": self.tables_removed,
            "resources_added": self.resources_added,
            "resources_removed": self.resources_removed,
            "resources_changed": self.resources_changed,
            "metadata_changes": [
                {"property": name, "old": old, "new": new}
                for name, old, new in self.metadata_changes
            ],
            "tables": [t.as_dict(max_rows) for t in self.changed_tables],
        }

    def to_json(self, max_rows: int | None = None) -> str:
        return json.dumps(self.as_dict(max_rows), indent=2, ensure_ascii=False, default=_jsonable)

    def to_markdown(self, max_rows: int | None = 20, level: int = 2) -> str:
        """GitHub-flavoured Markdown: a summary table, then each changed table's rows.

        Args:
            max_rows: at most this many rows in each list (None: all).
            level: the heading level of the title; each table's heading is one deeper.
        """
        return "\n".join(_markdown(self, max_rows, level)) + "\n"


# -- comparing ----------------------------------------------------------


def diff_packages(old: str | Path, new: str | Path) -> PackageDiff:
    """Compare two packages (folder, zip or descriptor URL) table by table, row by row.

    Raises:
        DiffError: either package cannot be read.
    """
    old_pkg, new_pkg = _load(old), _load(new)
    result = PackageDiff(
        old_version=old_pkg.descriptor.get("version"),
        new_version=new_pkg.descriptor.get("version"),
    )
    result.tables_added = [t for t in new_pkg.tables if t not in old_pkg.tables]
    result.tables_removed = [t for t in old_pkg.tables if t not in new_pkg.tables]
    result.resources_added = [r for r in new_pkg.other if r not in old_pkg.other]
    result.resources_removed = [r for r in old_pkg.other if r not in new_pkg.other]
    result.resources_changed = [
        r
        for r in new_pkg.other
        if r in old_pkg.other and _content_id(old_pkg.other[r]) != _content_id(new_pkg.other[r])
    ]
    result.metadata_changes = _metadata_changes(old_pkg, new_pkg)
    referenced = _referenced_tables(new_pkg) | _referenced_tables(old_pkg)
    for name, formats in new_pkg.tables.items():
        if name in old_pkg.tables:
            table_diff = _diff_table(name, old_pkg, old_pkg.tables[name], new_pkg, formats)
            table_diff.referenced = name in referenced
            result.tables.append(table_diff)
    return result


def _hash(resource: dict[str, Any]) -> str | None:
    value = resource.get("hash") or resource.get("coop100:hash")
    return str(value) if value else None


def _content_id(resource: dict[str, Any]) -> Any:
    return _hash(resource) or resource.get("path")


def _referenced_tables(package: _Package) -> set[str]:
    names = set()
    for formats in package.tables.values():
        for resource in formats.values():
            for fk in resource["schema"].get("foreignKeys", []):
                target = (fk.get("reference") or {}).get("resource")
                if target:
                    names.add(str(target))
    return names


def _metadata_changes(old: _Package, new: _Package) -> list[tuple[str, Any, Any]]:
    changes: list[tuple[str, Any, Any]] = []
    for key in sorted(set(old.descriptor) | set(new.descriptor)):
        if key in _VOLATILE or key == "resources":
            continue
        before, after = old.descriptor.get(key), new.descriptor.get(key)
        if before != after:
            changes.append((key, before, after))
    for name, formats in new.tables.items():
        for fmt, resource in sorted(formats.items()):
            before_res = old.tables.get(name, {}).get(fmt)
            if before_res is None:
                continue
            for key in sorted(set(resource) | set(before_res)):
                if key in _FILE_PROPERTIES:
                    continue
                if resource.get(key) != before_res.get(key):
                    changes.append(
                        (
                            f"resources.{resource['name']}.{key}",
                            before_res.get(key),
                            resource.get(key),
                        )
                    )
    for name in ("title", "description"):
        for table, formats in new.tables.items():
            for fmt, resource in sorted(formats.items()):
                before_res = old.tables.get(table, {}).get(fmt)
                if before_res is None:
                    continue
                a, b = before_res["schema"].get(name), resource["schema"].get(name)
                if a != b:
                    changes.append((f"schemas.{table}.{name}", a, b))
    return changes


def _schema_changes(old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    old_fields = {f["name"]: f for f in old.get("fields", [])}
    new_fields = {f["name"]: f for f in new.get("fields", [])}
    old_names, new_names = list(old_fields), list(new_fields)
    removed = [n for n in old_names if n not in new_fields]
    added = [n for n in new_names if n not in old_fields]
    changes: list[SchemaChange] = []
    # daff's view of a renamed column: one column gone and one come at the same
    # place, of the same type.
    renamed: dict[str, str] = {}
    for name in removed:
        position = old_names.index(name)
        if position < len(new_names):
            candidate = new_names[position]
            if candidate in added and _type_of(new_fields[candidate]) == _type_of(old_fields[name]):
                renamed[name] = candidate
    for name in removed:
        if name in renamed:
            changes.append(SchemaChange("field_renamed", renamed[name], name, renamed[name]))
        else:
            changes.append(SchemaChange("field_removed", name, _type_of(old_fields[name]), None))
    for name in added:
        if name not in renamed.values():
            changes.append(SchemaChange("field_added", name, None, _type_of(new_fields[name])))
    kept_old = [renamed.get(n, n) for n in old_names if n in new_fields or n in renamed]
    kept_new = [n for n in new_names if n in kept_old]
    if kept_old != kept_new:
        changes.append(SchemaChange("fields_reordered", None, kept_old, kept_new))
    old_by_new = {renamed.get(n, n): n for n in old_names}
    for name in new_names:
        if name not in old_by_new:
            continue
        before, after = old_fields[old_by_new[name]], new_fields[name]
        if _type_of(before) != _type_of(after):
            changes.append(SchemaChange("field_retyped", name, _type_of(before), _type_of(after)))
        if before.get("constraints", {}) != after.get("constraints", {}):
            changes.append(
                SchemaChange(
                    "constraints_changed",
                    name,
                    before.get("constraints", {}),
                    after.get("constraints", {}),
                )
            )
        for prop in ("title", "description", "categories", "missingValues"):
            if before.get(prop) != after.get(prop):
                changes.append(
                    SchemaChange(
                        "field_described", name, {prop: before.get(prop)}, {prop: after.get(prop)}
                    )
                )
    if _as_list(old.get("primaryKey")) != _as_list(new.get("primaryKey")):
        changes.append(
            SchemaChange(
                "primary_key_changed",
                None,
                _as_list(old.get("primaryKey")),
                _as_list(new.get("primaryKey")),
            )
        )
    if old.get("foreignKeys", []) != new.get("foreignKeys", []):
        changes.append(
            SchemaChange(
                "foreign_keys_changed", None, old.get("foreignKeys"), new.get("foreignKeys")
            )
        )
    return changes


def _type_of(field_descriptor: dict[str, Any]) -> str:
    kind = str(field_descriptor.get("type", "any"))
    fmt = field_descriptor.get("format")
    return f"{kind}:{fmt}" if fmt and fmt != "default" else kind


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _diff_table(
    name: str,
    old_pkg: _Package,
    old_formats: dict[str, dict[str, Any]],
    new_pkg: _Package,
    new_formats: dict[str, dict[str, Any]],
) -> TableDiff:
    old_schema = next(iter(old_formats.values()))["schema"]
    new_schema = next(iter(new_formats.values()))["schema"]
    changes = _schema_changes(old_schema, new_schema)
    # Parquet when both sides have it: typed and read without parsing.
    shared = [f for f in ("parquet", "csv") if f in old_formats and f in new_formats]
    fmt = shared[0] if shared else ""
    key = _as_list(new_schema.get("primaryKey")) or _as_list(old_schema.get("primaryKey"))
    result = TableDiff(name, key, changes)
    old_res, new_res = old_formats.get(fmt), new_formats.get(fmt)
    if old_res is None or new_res is None:
        return result
    if _hash(old_res) is not None and _hash(old_res) == _hash(new_res):
        # Same sha256, same bytes: same rows.
        result.old_rows = result.new_rows = _count_rows(new_pkg, new_res, fmt)
        return result
    old_table = _read_table(old_pkg, old_res, fmt)
    new_table = _read_table(new_pkg, new_res, fmt)
    result.old_rows, result.new_rows = old_table.num_rows, new_table.num_rows
    renamed = {c.old: c.new for c in changes if c.kind == "field_renamed"}
    old_table = old_table.rename_columns([renamed.get(n, n) for n in old_table.column_names])
    if not key or not all(k in old_table.column_names and k in new_table.column_names for k in key):
        key = [n for n in new_table.column_names if n in old_table.column_names]
        result.key = key
    _diff_rows(result, old_table, new_table, key)
    return result


def _diff_rows(result: TableDiff, old: pa.Table, new: pa.Table, key: list[str]) -> None:
    old_keys, new_keys = _key_table(old, key), _key_table(new, key)
    if old_keys.equals(new_keys):
        # The common case: the same keys in the same order; no join needed.
        old_index = new_index = pa.array(range(old.num_rows), pa.int64())
        added_index = removed_index = pa.array([], pa.int64())
    else:
        left = old_keys.append_column("_old", pa.array(range(old.num_rows), pa.int64()))
        right = new_keys.append_column("_new", pa.array(range(new.num_rows), pa.int64()))
        joined = left.join(right, keys=key, join_type="full outer", use_threads=True)
        old_col, new_col = joined["_old"], joined["_new"]
        both = pc.and_(pc.is_valid(old_col), pc.is_valid(new_col))
        matched = joined.filter(both)
        old_index = pc.cast(matched["_old"], pa.int64()).combine_chunks()
        new_index = pc.cast(matched["_new"], pa.int64()).combine_chunks()
        # Rows in their package's order, whatever order the join gave them in.
        removed_index = _sorted(joined.filter(pc.is_null(new_col))["_old"])
        added_index = _sorted(joined.filter(pc.is_null(old_col))["_new"])
    result.added = new.take(added_index)
    result.removed = old.take(removed_index)
    common = [n for n in new.column_names if n in old.column_names and n not in key]
    differs = None
    masks: dict[str, pa.ChunkedArray] = {}
    old_taken: dict[str, pa.ChunkedArray] = {}
    new_taken: dict[str, pa.ChunkedArray] = {}
    for column in common:
        a, b = old[column], new[column]
        if not a.type.equals(b.type):
            a, b = pc.cast(a, pa.string()), pc.cast(b, pa.string())
        a, b = a.take(old_index), b.take(new_index)
        # Unequal values, or exactly one of the two missing.
        mask = pc.fill_null(pc.not_equal(a, b), False)
        mask = pc.or_(mask, pc.xor(pc.is_null(a), pc.is_null(b)))
        if not pc.any(mask).as_py():
            continue
        masks[column], old_taken[column], new_taken[column] = mask, a, b
        differs = mask if differs is None else pc.or_(differs, mask)
    if differs is None:
        return
    rows = pc.indices_nonzero(
        differs.combine_chunks() if isinstance(differs, pa.ChunkedArray) else differs
    )
    keys_old = _key_table(old, key).take(old_index).take(rows).to_pylist()
    flags = {c: m.combine_chunks().take(rows).to_pylist() for c, m in masks.items()}
    before = {c: old_taken[c].take(rows).to_pylist() for c in masks}
    after = {c: new_taken[c].take(rows).to_pylist() for c in masks}
    for i, row_key in enumerate(keys_old):
        fields = {c: (before[c][i], after[c][i]) for c in masks if flags[c][i]}
        result.changed.append(RowChange(row_key, fields))
    result.changed.sort(key=lambda change: _sort_key(change.key, key))


def _sorted(index: pa.ChunkedArray) -> pa.Array:
    return pc.cast(pc.take(index, pc.sort_indices(index)), pa.int64()).combine_chunks()


def _key_table(table: pa.Table, key: list[str]) -> pa.Table:
    return table.select(key).combine_chunks()


def _sort_key(row: dict[str, Any], key: list[str]) -> tuple[Any, ...]:
    return tuple((row[k] is None, row[k]) for k in key)


def _rows(table: pa.Table | None, max_rows: int | None) -> list[dict[str, Any]]:
    if table is None:
        return []
    if max_rows is not None:
        table = table.slice(0, max_rows)
    return list(table.to_pylist())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# -- Markdown -----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "*(empty)*"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=_jsonable)
    else:
        text = str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    for char in "`*_<>[]":
        text = text.replace(char, "\\" + char)
    return text


def _key_text(row: dict[str, Any], key: list[str]) -> str:
    return ", ".join(_cell(row.get(k)) for k in key)


def _markdown(diff: PackageDiff, max_rows: int | None, level: int) -> Iterator[str]:
    versions = f"{diff.old_version or '?'} → {diff.new_version or '?'}"
    sub = "#" * (level + 1)
    yield f"{'#' * level} Changes {versions}"
    yield ""
    if not diff:
        yield "No changes: the two packages hold the same tables, rows and metadata."
        return
    listed = False
    for label, names in (
        ("Tables added", diff.tables_added),
        ("Tables removed", diff.tables_removed),
        ("Resources added", diff.resources_added),
        ("Resources removed", diff.resources_removed),
        ("Resources changed", diff.resources_changed),
    ):
        if names:
            listed = True
            yield f"- {label}: " + ", ".join(f"`{n}`" for n in names)
    changed = diff.changed_tables
    if changed:
        if listed:
            yield ""
        yield "| table | rows before | rows after | added | removed | changed | schema changes |"
        yield "|---|---:|---:|---:|---:|---:|---:|"
        for t in changed:
            yield (
                f"| `{t.name}` | {t.old_rows:,} | {t.new_rows:,} | {t.added_count:,} | "
                f"{t.removed_count:,} | {len(t.changed):,} | {len(t.schema_changes)} |"
            )
    if diff.metadata_changes:
        yield ""
        yield f"{sub} Metadata"
        yield ""
        for prop, old, new in diff.metadata_changes:
            if isinstance(old, list) and isinstance(new, list):
                # A list (sources, keywords): the entries that went and came, not all of it.
                gone = [item for item in old if item not in new]
                came = [item for item in new if item not in old]
                parts = [
                    f"{label} {', '.join(_cell(i) for i in items)}"
                    for label, items in (("removed", gone), ("added", came))
                    if items
                ]
                yield f"- `{prop}`: " + ("; ".join(parts) or "reordered")
            else:
                yield f"- `{prop}`: {_cell(old)} → {_cell(new)}"
    for t in changed:
        yield ""
        yield f"{sub} `{t.name}`"
        for change in t.schema_changes:
            yield ""
            yield (
                f"- schema: {change.kind.replace('_', ' ')}"
                + (f" `{change.field}`" if change.field else "")
                + f": {_cell(change.old)} → {_cell(change.new)}"
            )
        yield from _row_section("Added", t.added, max_rows)
        yield from _row_section("Removed", t.removed, max_rows)
        if t.changed:
            yield ""
            yield f"Changed rows ({len(t.changed):,}):"
            yield ""
            yield "| " + ", ".join(t.key) + " | field | old | new |"
            yield "|---|---|---|---|"
            for row in t.changed[:max_rows]:
                for name, (old, new) in row.fields.items():
                    key = _key_text(row.key, t.key)
                    yield f"| {key} | `{name}` | {_cell(old)} | {_cell(new)} |"
            yield from _more(len(t.changed), max_rows)


def _row_section(label: str, table: pa.Table | None, max_rows: int | None) -> Iterator[str]:
    if table is None or table.num_rows == 0:
        return
    yield ""
    yield f"{label} rows ({table.num_rows:,}):"
    yield ""
    yield "| " + " | ".join(table.column_names) + " |"
    yield "|" + "---|" * table.num_columns
    for row in _rows(table, max_rows):
        yield "| " + " | ".join(_cell(v) for v in row.values()) + " |"
    yield from _more(table.num_rows, max_rows)


def _more(total: int, max_rows: int | None) -> Iterator[str]:
    if max_rows is not None and total > max_rows:
        yield ""
        yield f"…and {total - max_rows:,} more (see the JSON diff for every row)."
