"""`coop100 diff` on real edits of the real records: a retitled affiliation, a statement
added, a field added to a schema; each package read from a folder, a zip and a URL."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from coop100.cli import cli
from coop100.pipeline import build
from coop100.versions.diff import DiffError, diff_packages
from coop100.write.archive import write_zip

NEW_STATEMENT = """
  - statement_id: esim-closing
    event_id: ilo-coop-100-launch-webinar
    person_id: simel-esim
    type: introduction
    text: Thanked the speakers and closed the webinar.
    source_id: s1
    paragraph: 8
"""


def _edited(fresh_build: Path, tmp_path: Path) -> Path:
    """A copy of the project with two real edits to its records, rebuilt."""
    root = tmp_path / "edited"
    shutil.copytree(fresh_build / "records", root / "records")
    affiliations = root / "records" / "people.yaml"
    text = affiliations.read_text(encoding="utf-8")
    assert "role: Cooperatives Unit Manager\n" in text
    affiliations.write_text(
        text.replace("role: Cooperatives Unit Manager\n", "role: Head of the Cooperatives Unit\n"),
        encoding="utf-8",
    )
    statements = root / "records" / "events" / "ilo-coop-100-launch-webinar.yaml"
    statements.write_text(
        statements.read_text(encoding="utf-8").replace(
            "\nstatement_topics:\n", NEW_STATEMENT + "\nstatement_topics:\n"
        ),
        "utf-8",
    )
    build(root)
    return root


@pytest.fixture(scope="module")
def edited(fresh_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _edited(fresh_build, tmp_path_factory.mktemp("diff"))


def test_same_package_has_no_changes(fresh_build: Path) -> None:
    result = diff_packages(fresh_build, fresh_build)
    assert not result
    assert result.as_dict()["tables"] == []
    assert "No changes" in result.to_markdown()


def test_retitled_affiliation_and_added_statement(fresh_build: Path, edited: Path) -> None:
    result = diff_packages(fresh_build, edited)
    tables = {t.name: t for t in result.changed_tables}
    assert set(tables) == {"affiliations", "statements"}

    affiliations = tables["affiliations"]
    assert affiliations.key == ["affiliation_id"]
    assert affiliations.added_count == affiliations.removed_count == 0
    assert [c.as_dict() for c in affiliations.changed] == [
        {
            "key": {"affiliation_id": "simel-esim-s2"},
            "changes": {
                "role": {
                    "old": "Cooperatives Unit Manager",
                    "new": "Head of the Cooperatives Unit",
                }
            },
        }
    ]

    statements = tables["statements"]
    assert statements.changed == [] and statements.removed_count == 0
    assert statements.new_rows == statements.old_rows + 1
    assert statements.added is not None
    (added,) = statements.added.to_pylist()
    assert added["statement_id"] == "esim-closing"
    assert added["text"] == "Thanked the speakers and closed the webinar."
    assert added["paragraph"] == 8
    assert result.tables_added == result.tables_removed == []
    assert all(t.schema_changes == [] for t in result.tables)


def test_markdown_and_json(fresh_build: Path, edited: Path) -> None:
    result = diff_packages(fresh_build, edited)
    markdown = result.to_markdown()
    assert "| `affiliations` | 17 | 17 | 0 | 0 | 1 | 0 |" in markdown
    assert (
        "| simel-esim-s2 | `role` | Cooperatives Unit Manager | Head of the Cooperatives Unit |"
        in markdown
    )
    assert "esim-closing" in markdown
    data = json.loads(result.to_json())
    by_name = {t["name"]: t for t in data["tables"]}
    assert by_name["statements"]["counts"] == {"added": 1, "removed": 0, "changed": 0}
    assert by_name["statements"]["added"][0]["statement_id"] == "esim-closing"
    # The same records give the same bytes.
    assert result.to_json() == diff_packages(fresh_build, edited).to_json()


def test_reversed_diff_removes_the_statement(fresh_build: Path, edited: Path) -> None:
    result = diff_packages(edited, fresh_build)
    tables = {t.name: t for t in result.changed_tables}
    assert tables["statements"].removed_count == 1
    assert tables["statements"].added_count == 0
    change = tables["affiliations"].changed[0]
    assert change.fields == {"role": ("Head of the Cooperatives Unit", "Cooperatives Unit Manager")}


def _add_field(root: Path, table: str, name: str, values: list[str | None]) -> None:
    """Publish a new column in one table: its schema, CSV and Parquet and the descriptor."""
    schema_path = root / "schemas" / f"{table}.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    schema["fields"].append({"name": name, "type": "string", "description": "A new column"})
    schema_path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    parquet_path = root / "build" / "parquet" / f"{table}.parquet"
    data = pq.read_table(parquet_path)
    data = data.append_column(name, pa.array(values, pa.string()))
    pq.write_table(data, parquet_path)
    descriptor_path = root / "datapackage.json"
    descriptor = json.loads(descriptor_path.read_text(encoding="utf-8"))
    for resource in descriptor["resources"]:
        if resource["name"] == f"{table}-parquet":
            resource.pop("coop100:hash", None)
    descriptor_path.write_text(json.dumps(descriptor, indent=2) + "\n", encoding="utf-8")


def test_field_added_to_a_schema(fresh_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "with-field"
    shutil.copytree(fresh_build, root, ignore=shutil.ignore_patterns("records"))
    rows = pq.read_table(root / "build" / "parquet" / "people.parquet").num_rows
    _add_field(root, "people", "orcid", [None] * (rows - 1) + ["0000-0002-1825-0097"])
    result = diff_packages(fresh_build, root)
    (people,) = result.changed_tables
    assert people.name == "people"
    assert [c.as_dict() for c in people.schema_changes] == [
        {"kind": "field_added", "field": "orcid", "old": None, "new": "string"}
    ]
    # The new column's values are not changes of the old rows.
    assert people.changed == [] and people.added_count == 0
    assert "field added `orcid`" in result.to_markdown()


def test_renamed_reordered_and_retyped_fields(fresh_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "reshaped"
    shutil.copytree(fresh_build, root, ignore=shutil.ignore_patterns("records"))
    schema_path = root / "schemas" / "affiliations.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    fields = schema["fields"]
    old_names = [f["name"] for f in fields]
    fields[1]["name"] = "name"  # renamed in place
    fields[-1], fields[-2] = fields[-2], fields[-1]  # two fields swapped
    schema_path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    kinds = [c.kind for c in diff_packages(fresh_build, root).changed_tables[0].schema_changes]
    assert kinds == ["field_renamed", "fields_reordered"], old_names
    schema["fields"][0]["type"] = "integer"
    schema_path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    changes = diff_packages(fresh_build, root).changed_tables[0].schema_changes
    assert ("field_retyped", "string", "integer") in [(c.kind, c.old, c.new) for c in changes]


def test_zip_and_url(fresh_build: Path, edited: Path, tmp_path: Path) -> None:
    zipped = write_zip(fresh_build / "datapackage.json", tmp_path / "old.zip")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(edited))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/datapackage.json"
        from_zip = diff_packages(zipped, url)
    finally:
        server.shutdown()
        server.server_close()
    assert from_zip.to_json() == diff_packages(fresh_build, edited).to_json()


def test_cli(fresh_build: Path, edited: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["diff", str(fresh_build), str(edited), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tables"][0]["name"] == "affiliations"
    result = runner.invoke(cli, ["diff", str(fresh_build), str(edited)])
    assert result.exit_code == 0 and result.output.startswith("## Changes")


def test_unreadable_package_is_a_clear_error(fresh_build: Path, tmp_path: Path) -> None:
    with pytest.raises(DiffError, match="not a folder holding datapackage.json"):
        diff_packages(tmp_path / "nothing-here", fresh_build)
    result = CliRunner().invoke(cli, ["diff", str(tmp_path / "nothing-here"), str(fresh_build)])
    assert result.exit_code == 1
    assert "nothing was compared" in result.output
    assert "Traceback" not in result.output


def test_a_list_of_metadata_shows_what_went_and_came(fresh_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "retitled-source"
    shutil.copytree(fresh_build, root, ignore=shutil.ignore_patterns("records"))
    descriptor_path = root / "datapackage.json"
    descriptor = json.loads(descriptor_path.read_text(encoding="utf-8"))
    old_source = dict(descriptor["sources"][0])
    descriptor["sources"][0]["title"] = "S1: renamed"
    descriptor_path.write_text(json.dumps(descriptor, indent=2) + "\n", encoding="utf-8")
    result = diff_packages(fresh_build, root)
    assert [prop for prop, _, _ in result.metadata_changes] == ["sources"]
    line = next(x for x in result.to_markdown().splitlines() if x.startswith("- `sources`"))
    assert line.startswith(f'- `sources`: removed {{"title": "{old_source["title"]}"')
    assert '; added {"title": "S1: renamed"' in line
