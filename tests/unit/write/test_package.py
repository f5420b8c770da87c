"""The published package: valid to plain frictionless, equal to a fresh build, complete."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from coop100 import settings
from coop100.cli import cli
from coop100.read.records import Records
from coop100.rules.models import MODELS
from coop100.versions.release import read_releases
from coop100.write.package import published_files
from tests.conftest import ROOT

FRICTIONLESS = Path(sys.executable).parent / "frictionless"


def _frictionless(root: Path) -> tuple[int, dict[str, Any]]:
    """Run the plain frictionless CLI on root/datapackage.json: exit code and JSON report."""
    result = subprocess.run(
        [str(FRICTIONLESS), "validate", "--json", "datapackage.json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_plain_frictionless_finds_the_committed_package_valid() -> None:
    returncode, report = _frictionless(ROOT)
    statuses = {task["name"]: (task["valid"], len(task["errors"])) for task in report["tasks"]}
    expected = {f"{m.table}{s}": (True, 0) for m in MODELS for s in ("", "-parquet")}
    expected |= {name: (True, 0) for name in settings.FILE_RESOURCES}
    assert statuses == expected
    assert report["valid"] is True
    assert returncode == 0


def test_plain_frictionless_catches_a_broken_csv(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    shutil.copytree(ROOT / "build", root / "build", ignore=shutil.ignore_patterns("*.db", "*.zip"))
    shutil.copytree(ROOT / "schemas", root / "schemas")
    shutil.copy(ROOT / "datapackage.json", root)
    csv = root / "build/csv/participations.csv"
    csv.write_bytes(csv.read_bytes().replace(b',"speaker",', b',"keynote",', 1))
    returncode, report = _frictionless(root)
    types = {(task["name"], e["type"]) for task in report["tasks"] for e in task["errors"]}
    assert ("participations", "constraint-error") in types
    assert ("participations", "hash-count") in types
    assert returncode == 1


def test_committed_files_equal_a_fresh_build(live_build: Path) -> None:
    """The drift check: records/ and the published files agree byte for byte."""
    drift = [
        rel
        for rel in published_files(ROOT)
        if (ROOT / rel).read_bytes() != (live_build / rel).read_bytes()
    ]
    assert drift == [], "run `make build` and commit the result"


def test_build_is_deterministic(fresh_build: Path, tmp_path: Path) -> None:
    shutil.copytree(fresh_build / "records", tmp_path / "records")
    result = CliRunner().invoke(cli, ["build", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for rel in published_files(fresh_build):
        assert (tmp_path / rel).read_bytes() == (fresh_build / rel).read_bytes(), rel


def test_validate_command_passes_on_the_committed_package() -> None:
    result = CliRunner().invoke(cli, ["validate", "--root", str(ROOT)])
    assert (
        result.output.splitlines()[-1] == "valid: records, checksums, CSV == Parquet, frictionless"
    )
    assert result.exit_code == 0


def test_validate_reports_a_tampered_parquet(fresh_build: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "copy"
    shutil.copytree(fresh_build, root)
    path = root / "build/parquet/people.parquet"
    table = pq.read_table(path)
    names = table.column("name").to_pylist()
    names[0] = "Someone Else"
    table = table.set_column(table.schema.get_field_index("name"), "name", [names])
    pq.write_table(table, path)
    result = CliRunner().invoke(cli, ["validate", "--root", str(root)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert (
        "build/parquet/people.parquet: sha256 differs from datapackage.json; run `coop100 build`"
        in lines
    )
    # The Parquet file holds people by person_id: Anna Biondi's row first.
    expected = "people: column name differs at row 1 of the Parquet file: CSV 'Anna Biondi', "
    assert expected + "Parquet 'Someone Else'" in lines


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coop100", "--help"], capture_output=True, text=True, check=True
    )
    assert "build" in result.stdout and "validate" in result.stdout


def test_descriptor_metadata() -> None:
    descriptor = json.loads((ROOT / "datapackage.json").read_text())
    assert descriptor["$schema"] == "https://datapackage.org/profiles/2.0/datapackage.json"
    assert descriptor["name"] == "ilo-coop-100"
    assert descriptor["version"] == read_releases(ROOT / "records")[0].version
    assert [lic["name"] for lic in descriptor["licenses"]] == ["CC-BY-4.0", "MIT"]
    assert [s["title"][:3] for s in descriptor["sources"]][:5] == [
        "S1:",
        "S2:",
        "S3:",
        "S4:",
        "S5:",
    ]
    names = [r["name"] for r in descriptor["resources"]]
    assert names[-len(settings.FILE_RESOURCES) :] == list(settings.FILE_RESOURCES)
    for resource in descriptor["resources"]:
        assert resource["description"]
        assert resource["bytes" if "bytes" in resource else "coop100:bytes"] > 0
        if resource["name"] in settings.FILE_RESOURCES:
            continue
        assert resource["schema"] == f"schemas/{resource['name'].removesuffix('-parquet')}.json"
        if resource["format"] == "csv":
            assert resource["hash"].startswith("sha256:") and resource["bytes"] > 0
            assert resource["encoding"] == "utf-8"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.table)
def test_table_schema_matches_models(model: type) -> None:
    schema = json.loads((ROOT / settings.SCHEMAS_DIR / f"{model.table}.json").read_text())
    assert [f["name"] for f in schema["fields"]] == sorted(
        model.model_fields, key=[f["name"] for f in schema["fields"]].index
    )
    assert all(f["description"] for f in schema["fields"])
    assert schema["primaryKey"] == list(model.primary_key)


def test_every_row_names_its_source(records: Records) -> None:
    sources = {r.key for r in records.rows("sources")}
    for table, located in records.tables.items():
        for loc in located:
            source = getattr(loc.record, "source_id", None)
            if table not in ("sources", "topics", "statement_topics"):
                assert source in sources, (table, loc.record.key)


def test_the_webinar_as_published(records: Records) -> None:
    people = {p.key: p for p in records.rows("people")}
    assert len(people) == 7
    assert people["jurgen-schwettmann"].name == "Jürgen Schwettmann"  # type: ignore[attr-defined]
    names = {(n.person_id, n.name) for n in records.rows("person_names")}  # type: ignore[attr-defined]
    assert ("jurgen-schwettmann", "Jürgen Schwettman") in names
    order = sorted(records.rows("participations"), key=lambda p: p.speaking_order)  # type: ignore[attr-defined]
    assert [p.person_id for p in order] == [  # type: ignore[attr-defined]
        "simel-esim",
        "marieke-louis",
        "jurgen-schwettmann",
        "vic-van-vuuren",
        "anna-biondi",
        "ramin-behzad",
        "courtenay-cabot-venton",
    ]
    statements = records.rows("statements")
    assert len(statements) >= 12
    assert all(s.source_id == "s1" and 1 <= s.paragraph <= 8 for s in statements)  # type: ignore[attr-defined]
    agrees = {s.key: s.responds_to_statement_id for s in statements}  # type: ignore[attr-defined]
    assert agrees["biondi-agrees"] == "van-vuuren-new-economic-model"
    webinar = next(e for e in records.rows("events") if e.key == "ilo-coop-100-launch-webinar")
    assert (webinar.attendance_summary, webinar.attendance_body) == (100, 110)  # type: ignore[attr-defined]
    assert webinar.time_zone is None  # type: ignore[attr-defined]


def test_readme_describes_every_table() -> None:
    """Every table is in the README's table of tables, in publication order (the counts
    are the landing page's and the descriptor's, so adding rows changes no prose)."""
    import re

    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `(\w+)` \| ", readme, flags=re.M)
    assert listed[: len(MODELS)] == [m.table for m in MODELS]
