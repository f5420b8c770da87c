"""The codebook: every table and field of the package, and how the tables join.

Written by the build (documents.py) beside the tables, as Markdown
(build/codebook/codebook.md), and rendered by the site at /codebook. Everything
in it is derived: each field's type, constraints, categories and description
from the models (tables.columns, the same place the Table Schemas come from),
the keys from each model's primary_key and foreign_keys, and one example value
per field from the rows being published: the first non-empty value in the
package's order, so the same records give the same bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from coop100 import settings
from coop100.rules.checks import Check
from coop100.rules.models import MODEL_BY_TABLE, MODELS, Record
from coop100.rules.tables import Column, columns, field_metadata, table_schema

# An example longer than this is cut, with an ellipsis: the data has it whole.
EXAMPLE_CHARS = 60


def referenced_by(table: str) -> list[tuple[str, str, str]]:
    """(table, field, target field) of every foreign key that points at table."""
    return [
        (model.table, name, target_field)
        for model in MODELS
        for name, (target, target_field) in model.foreign_keys.items()
        if target == table
    ]


def rules(model: type[Record], column: Column) -> list[str]:
    """What a field's values must be, in words: the Table Schema's constraints and the
    models' own checks (which bulk.py and the YAML reader run)."""
    info = model.model_fields[column.name]
    found = ["required" if column.required else "may be empty"]
    found += [
        m.description
        for m in field_metadata(info, info.annotation)
        if isinstance(m, Check) and m.description != "text"
    ]
    found += [
        f"matches `{m.pattern}`"
        for m in field_metadata(info, info.annotation)
        if isinstance(getattr(m, "pattern", None), str)
    ]
    fmt = next(f for f in table_schema(model)["fields"] if f["name"] == column.name).get("format")
    if fmt:
        found.append(f"written `{fmt}`")
    if column.max_length is not None:
        found.append(f"at most {column.max_length} characters")
    if column.minimum is not None:
        found.append(f"at least {column.minimum}")
    if column.maximum is not None:
        found.append(f"at most {column.maximum}")
    if column.enum:
        found.append("one of the categories")
    return found


def example_text(value: Any) -> str:
    """A value as the CSV writes it, cut to EXAMPLE_CHARS."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.time):
        text = value.strftime("%H:%M:%S")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1].rstrip() + "…"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" or text.startswith(" ") or text.endswith(" ") else ""
    return f"{fence}{pad}{_cell(text)}{pad}{fence}"


def codebook_markdown(examples: dict[str, dict[str, str]], title: str) -> str:
    """The codebook as Markdown.

    Args:
        examples: table -> field -> an example value, as example_text gives it;
            a field with none is shown as empty in every row.
        title: the package's title.
    """
    out = [
        f"# Codebook: {title}",
        "",
        "Every table of the package, every field with its type, what its values must be,",
        "its categories (for a field with a fixed list of values), its description and an",
        "example from the data, and how the tables join. Each table is published as",
        f"`{settings.CSV_DIR}/<table>.csv` and `{settings.PARQUET_DIR}/<table>.parquet`,",
        f"described by `{settings.SCHEMAS_DIR}/<table>.json`; an empty CSV cell is a",
        "missing value (null in Parquet). The diagram of the tables and their keys is",
        f"[`{Path(settings.DIAGRAM_FILE).name}`]({Path(settings.DIAGRAM_FILE).name}).",
        "Written by `coop100 build` from the models and the rows; do not edit.",
        "",
        "## Tables",
        "",
        "| table | one row is | primary key |",
        "|---|---|---|",
    ]
    for model in MODELS:
        key = ", ".join(f"`{f}`" for f in model.primary_key)
        out.append(
            f"| [`{model.table}`](#{model.table}) | {_cell(model.table_description)} | {key} |"
        )
    out += [
        "",
        "## How the tables join",
        "",
        "Each foreign key names one row of another table (or of the same table); an",
        "empty value joins to nothing.",
        "",
        "| field | joins to |",
        "|---|---|",
    ]
    for model in MODELS:
        for name, (target, target_field) in model.foreign_keys.items():
            out.append(f"| `{model.table}.{name}` | `{target}.{target_field}` |")
    for model in MODELS:
        out += _table_section(model, examples.get(model.table, {}))
    return "\n".join(out) + "\n"


def _table_section(model: type[Record], examples: dict[str, str]) -> list[str]:
    out = [
        "",
        f"## {model.table}",
        "",
        f"**{model.table_title}.** {model.table_description}",
        "",
        f"- Files: `{settings.CSV_DIR}/{model.table}.csv`, "
        f"`{settings.PARQUET_DIR}/{model.table}.parquet`; "
        f"schema `{settings.SCHEMAS_DIR}/{model.table}.json`",
        f"- Primary key: {', '.join(f'`{f}`' for f in model.primary_key)}",
    ]
    joins = [f"`{name}` → `{t}.{f}`" for name, (t, f) in model.foreign_keys.items()]
    out.append(f"- Foreign keys: {'; '.join(joins) if joins else 'none'}")
    back = [f"`{t}.{f}`" for t, f, _ in referenced_by(model.table)]
    out.append(f"- Referred to by: {', '.join(back) if back else 'no other table'}")
    out += [
        "",
        "| field | type | values | categories | description | example |",
        "|---|---|---|---|---|---|",
    ]
    for column in columns(model):
        kind = column.frictionless_type
        if column.name in model.primary_key:
            kind += ", key"
        target = model.foreign_keys.get(column.name)
        if target:
            kind += f", → `{target[0]}.{target[1]}`"
        categories = ", ".join(_code(v) for v in column.enum)
        example = examples.get(column.name)
        out.append(
            f"| `{column.name}` | {kind} | {_cell('; '.join(rules(model, column)))} "
            f"| {categories} | {_cell(column.description)} "
            f"| {_code(example) if example is not None else '(always empty)'} |"
        )
    return out


class CodebookWriter:
    """The codebook as a document of the build: fed every table, written when closed."""

    def __init__(self, path: Path, title: str) -> None:
        self.path, self.title = path, title
        self.appending: Path | None = None  # written at once, on close
        self.examples: dict[str, dict[str, str]] = {}

    def add(self, table: str, batch: pa.Table) -> None:
        """Keep the first non-empty value of each field not yet given one."""
        found = self.examples.setdefault(table, {})
        model = MODEL_BY_TABLE.get(table)
        if model is None or len(found) == len(columns(model)):
            return
        for name in batch.column_names:
            if name in found:
                continue
            values = batch[name]
            if values.null_count == len(values):
                continue
            first = pc.index(pc.is_valid(values), True).as_py()
            found[name] = example_text(values[first].as_py())

    def close(self) -> None:
        self.path.write_bytes(codebook_markdown(self.examples, self.title).encode("utf-8"))
