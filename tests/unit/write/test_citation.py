"""CITATION.cff is valid Citation File Format 1.2.0 (the format's own JSON Schema), says
this release's version and date, and the landing page says how to cite the package."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from coop100 import settings
from coop100.read.records import read_about
from coop100.versions.release import read_releases
from tests.conftest import RECORDS, ROOT
from tests.site_fixtures import fixture_package

CFF_SCHEMA = Path(__file__).parents[2] / "cff-schema" / "schema.json"


def _citation(root: Path) -> dict[str, object]:
    data = yaml.safe_load((root / settings.CITATION_FILE).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_citation_is_valid_cff() -> None:
    schema = json.loads(CFF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [e.message for e in validator.iter_errors(_citation(ROOT))]
    assert errors == []


def test_a_bad_citation_is_refused() -> None:
    schema = json.loads(CFF_SCHEMA.read_text(encoding="utf-8"))
    bad = _citation(ROOT) | {"type": "data", "date-released": "2026-13-01"}
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    assert sorted(e.message for e in validator.iter_errors(bad)) == [
        "'2026-13-01' does not match '^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$'",
        "'2026-13-01' is not a 'date'",
        "'data' is not one of ['dataset', 'software']",
    ]


def test_citation_is_this_release() -> None:
    latest = read_releases(ROOT / "records")[0]
    citation = _citation(ROOT)
    assert citation["type"] == "dataset"
    assert citation["version"] == latest.version
    assert citation["date-released"] == latest.released
    assert citation["title"] == read_about(ROOT / "records").title
    assert citation["license"] == "CC-BY-4.0"


def test_landing_page_says_how_to_cite(client) -> None:
    latest, about = read_releases(RECORDS)[0], read_about(RECORDS)
    page = client.get("/").text
    assert '<h2 id="how-to-cite">How to cite</h2>' in page
    # At the package's canonical address, not the one the page was asked at.
    assert (
        f"coop100 contributors ({latest.released[:4]}). {about.title}"
        f" (Version {latest.version}) [Data set]. {about.homepage}/"
    ) in page
    assert '<a href="/data/CITATION.cff" download>CITATION.cff</a>' in page
    published = (fixture_package() / "CITATION.cff").read_text()
    assert client.get("/data/CITATION.cff").text == published
