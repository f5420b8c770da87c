"""The codebook and the diagram of the tables: derived from the models and the rows."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
from frictionless import Package
from markdown_it import MarkdownIt

from coop100 import settings
from coop100.rules.models import MODELS
from coop100.rules.tables import columns, table_schema
from coop100.write.codebook import EXAMPLE_CHARS, CodebookWriter, example_text
from coop100.write.diagram import diagram_svg, joins

SVG = "{http://www.w3.org/2000/svg}"


def _sections(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Each table's field rows, read back from the codebook's Markdown tables."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    found: dict[str, list[dict[str, str]]] = {}
    header: list[str] = []
    row: list[str] = []
    current: list[dict[str, str]] = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            current = found.setdefault(tokens[i + 1].content, [])
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            row.append(token.content)
        elif token.type == "tr_close" and tokens[i - 1].type == "th_close":
            header = row
        elif token.type == "tr_close":
            current.append(dict(zip(header, row, strict=True)))
    return found


def test_codebook_describes_every_table_and_field_from_the_models(fresh_build: Path) -> None:
    text = (fresh_build / settings.CODEBOOK_FILE).read_text(encoding="utf-8")
    sections = _sections(text)
    for model in MODELS:
        rows = sections[model.table]
        assert [r["field"].strip("`") for r in rows] == [c.name for c in columns(model)]
        for row, column in zip(rows, columns(model), strict=True):
            assert row["description"] == column.description
            assert row["type"].startswith(column.frictionless_type)
            assert row["values"].startswith("required" if column.required else "may be empty")
            assert row["categories"] == ", ".join(f"`{v}`" for v in column.enum)
            if column.max_length is not None:
                assert f"at most {column.max_length} characters" in row["values"]
        for name, (target, target_field) in model.foreign_keys.items():
            row = next(r for r in rows if r["field"] == f"`{name}`")
            assert f"→ `{target}.{target_field}`" in row["type"]
            assert f"| `{model.table}.{name}` | `{target}.{target_field}` |" in text
        for name in model.primary_key:
            assert ", key" in next(r for r in rows if r["field"] == f"`{name}`")["type"]


def test_each_example_is_the_first_value_the_data_holds(fresh_build: Path) -> None:
    sections = _sections((fresh_build / settings.CODEBOOK_FILE).read_text(encoding="utf-8"))
    for model in MODELS:
        path = fresh_build / settings.CSV_DIR / f"{model.table}.csv"
        with path.open(encoding="utf-8", newline="") as handle:
            data = list(csv.DictReader(handle))
        for row in sections[model.table]:
            name = row["field"].strip("`")
            first = next((r[name] for r in data if r[name] != ""), None)
            if first is None:
                assert row["example"] == "(always empty)"
                continue
            expected = first if len(first) <= EXAMPLE_CHARS else first[: EXAMPLE_CHARS - 1]
            assert row["example"].strip("`").removesuffix("…").rstrip() == expected.rstrip()


def test_examples_come_from_the_first_batch_that_holds_one(tmp_path: Path) -> None:
    people = next(m for m in MODELS if m.table == "people")
    writer = CodebookWriter(tmp_path / "codebook.md", "T")
    schema = pa.schema([(c.name, c.arrow_type) for c in columns(people)])
    empty = {c.name: [None] for c in columns(people)}
    writer.add("people", pa.table({**empty, "person_id": ["a"]}, schema=schema))
    writer.add("people", pa.table({**empty, "person_id": ["b"], "name": ["B"]}, schema=schema))
    assert writer.examples["people"] == {"person_id": "a", "name": "B"}
    assert example_text("x" * 100) == "x" * (EXAMPLE_CHARS - 1) + "…"
    writer.close()
    assert "(always empty)" in (tmp_path / "codebook.md").read_text(encoding="utf-8")


def test_enumerated_fields_carry_v2_categories_beside_enum_and_frictionless_validates(
    fresh_build: Path,
) -> None:
    enumerated = 0
    for model in MODELS:
        path = fresh_build / settings.SCHEMAS_DIR / f"{model.table}.json"
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema == table_schema(model)
        for field in schema["fields"]:
            enum = field.get("constraints", {}).get("enum")
            assert field.get("categories") == enum
            enumerated += enum is not None
    assert enumerated == 7  # types, modes, kinds, roles, honorifics
    report = Package(str(fresh_build / settings.DESCRIPTOR)).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


def test_diagram_draws_every_table_and_one_line_per_foreign_key() -> None:
    text = diagram_svg()
    assert text == diagram_svg()  # the same bytes every time
    root = ET.fromstring(text)
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert [t for t in labels if t in {m.table for m in MODELS}] == [m.table for m in MODELS]
    lines = [p for p in root.iter(f"{SVG}path") if p.get("fill") == "none"]
    assert len(lines) == len(joins()) == sum(len(m.foreign_keys) for m in MODELS)
    for table, field, target, _ in joins():
        assert any(t and t.split()[-3:] == [field, "→", target] for t in labels), (table, field)
    description = root.find(f"{SVG}desc")
    assert description is not None and description.text is not None
    assert "participations.event_id joins to events.event_id" in description.text


def test_codebook_and_diagram_are_package_resources(fresh_build: Path) -> None:
    descriptor = json.loads((fresh_build / settings.DESCRIPTOR).read_text())
    by_name = {r["name"]: r for r in descriptor["resources"]}
    assert by_name[settings.CODEBOOK_RESOURCE]["path"] == settings.CODEBOOK_FILE
    assert by_name[settings.DIAGRAM_RESOURCE]["mediatype"] == "image/svg+xml"
    assert (fresh_build / settings.DIAGRAM_FILE).read_text(encoding="utf-8") == diagram_svg()


def test_feed_benchmark_runs_on_a_built_package(fresh_build: Path) -> None:
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "codebook_feed.py"
    result = subprocess.run(
        [sys.executable, str(script), "--root", str(fresh_build), "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert re.fullmatch(
        r"[\d,]+ rows in \d+ batches: codebook [\d.]+ ms, CSV floor [\d.]+ ms, "
        r"ratio [\d.]+ \(best of 1\)\n",
        result.stdout,
    )
