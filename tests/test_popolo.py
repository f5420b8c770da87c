"""The Popolo export: valid against the Popolo project's own JSON Schemas (draft-03,
vendored in tests/popolo-schemas/), true to the tables, and loaded by a Popolo reader
(mySociety's everypolitician-popolo)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from popolo_data.importer import Popolo
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT3

from coop100 import settings
from coop100.records import Records

from .conftest import ROOT

SCHEMAS = Path(__file__).parent / "popolo-schemas"
COLLECTIONS = {
    "persons": "person",
    "organizations": "organization",
    "memberships": "membership",
    "events": "event",
    "speeches": "speech",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    data = json.loads((ROOT / settings.POPOLO_FILE).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _validator(kind: str) -> jsonschema.Draft3Validator:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["id"], Resource.from_contents(schema, DRAFT3)))
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = json.loads((SCHEMAS / f"{kind}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft3Validator(
        schema, registry=registry, format_checker=jsonschema.Draft3Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_every_object_is_valid_popolo(document: dict[str, Any], collection: str) -> None:
    validator = _validator(COLLECTIONS[collection])
    assert document[collection]
    errors = [
        f"{item.get('id')}: {error.message}"
        for item in document[collection]
        for error in validator.iter_errors(item)
    ]
    assert errors == []


def test_the_schemas_refuse_bad_objects() -> None:
    speech = _validator("speech")
    assert [e.message for e in speech.iter_errors({"id": "x", "position": "first"})] == [
        "'first' is not of type 'integer', 'null'"
    ]
    person = _validator("person")
    bad = {"id": "x", "other_names": [{"name": 5}], "sources": [{"note": "no url"}]}
    assert sorted(e.message for e in person.iter_errors(bad)) == [
        "'url' is a required property",
        "5 is not of type 'string'",
    ]


def test_objects_follow_the_tables(document: dict[str, Any], records: Records) -> None:
    counts = {name: len(items) for name, items in document.items()}
    assert counts == {
        "persons": len(records.rows("people")),
        "organizations": len(records.rows("organisations")),
        "memberships": len(records.rows("affiliations")),
        "events": len(records.rows("events")),
        "speeches": len(records.rows("statements")),
    }
    persons = {p["id"]: p for p in document["persons"]}
    assert persons["jurgen-schwettmann"]["other_names"] == [
        {"name": "Jürgen Schwettman", "note": "as S1 spells it"}
    ]
    organizations = {o["id"]: o for o in document["organizations"]}
    assert organizations["ilo-cooperatives-unit"]["parent_id"] == "ilo-enterprises-department"
    assert organizations["ilo"]["identifiers"] == [{"scheme": "wikidata", "identifier": "Q54129"}]
    events = {e["id"]: e for e in document["events"]}
    assert events["ilo-coop-100-launch-webinar"]["parent_id"] == "ilo-coop-100"
    speeches = document["speeches"]
    assert speeches[0]["creator_id"] == "simel-esim"
    assert speeches[0]["event_id"] == "ilo-coop-100-launch-webinar"
    assert [s["position"] for s in speeches] == list(range(1, len(speeches) + 1))
    assert speeches[0]["sources"][0]["note"] == "S1, paragraph 3"


def test_rival_claims_stay_distinguishable(document: dict[str, Any]) -> None:
    memberships = document["memberships"]
    assert len({m["id"] for m in memberships}) == len(memberships)
    by_claim: dict[str, list[dict[str, Any]]] = {}
    for membership in memberships:
        by_claim.setdefault(membership["claim_key"], []).append(membership)
    rivals = {key: claims for key, claims in by_claim.items() if len(claims) > 1}
    assert rivals
    for claims in rivals.values():
        assert Counter(m["preferred"] for m in claims)[True] == 1
        labels = [m["label"] for m in claims]
        assert len(set(labels)) == len(labels)
    esim = {m["id"]: m for m in by_claim["simel-esim-title-2020"]}
    assert esim["simel-esim-s2"]["label"] == "simel-esim-title-2020: preferred claim"
    assert esim["simel-esim-s1"]["role"] == "Director of the Cooperatives Unit"


def test_a_popolo_reader_loads_it() -> None:
    popolo = Popolo.from_filename(str(ROOT / settings.POPOLO_FILE))
    assert len(popolo.persons) == 7 and len(popolo.events) == 2
    person = popolo.persons.get(id="jurgen-schwettmann")
    assert [n.get("name") if isinstance(n, dict) else n.name for n in person.other_names] == [
        "Jürgen Schwettman"
    ]
    roles = sorted(m.role for m in person.memberships)
    assert roles
    membership = next(m for m in popolo.memberships if m.person_id == "simel-esim")
    assert membership.person.name == "Simel Esim"
    assert membership.organization.name == "Cooperatives Unit"
    webinar = popolo.events.get(id="ilo-coop-100-launch-webinar")
    assert webinar.organization.name == "International Labour Organization"


def test_the_package_describes_it() -> None:
    descriptor = json.loads((ROOT / "datapackage.json").read_text(encoding="utf-8"))
    (resource,) = [r for r in descriptor["resources"] if r["name"] == settings.POPOLO_RESOURCE]
    assert resource["path"] == settings.POPOLO_FILE
    assert resource["mediatype"] == "application/json"
    assert resource["hash"].startswith("sha256:")


def test_arrow_speeches_are_the_python_speeches(tmp_path: Path) -> None:
    """The speeches' lines are built in Arrow; they must be what the encoder writes."""
    import pyarrow as pa

    from coop100.bulk import read_tables
    from coop100.popolo import _ENCODER, popolo, speech_lines

    tables = read_tables(ROOT / "records").tables
    statements = tables["statements"]
    texts = statements["text"].to_pylist()
    texts[0] = 'He said "co-operation" \\ not C:\\path — naïve ✓ 𝄞'
    texts[1] = '</script><!-- in JSON, and a quote: "'
    statements = statements.set_column(
        statements.column_names.index("text"), "text", pa.array(texts, pa.string())
    )
    people = statements["person_id"].to_pylist()
    people[2] = None  # said by an organisation
    paragraphs = statements["paragraph"].to_pylist()
    paragraphs[3] = None
    statements = statements.set_column(
        statements.column_names.index("person_id"), "person_id", pa.array(people, pa.string())
    )
    tables["statements"] = statements.set_column(
        statements.column_names.index("paragraph"),
        "paragraph",
        pa.array(paragraphs, statements.schema.field("paragraph").type),
    )
    expected = [_ENCODER.encode(speech) for speech in popolo(tables)["speeches"]]
    assert list(speech_lines(tables)) == expected
    assert json.loads(expected[0])["text"] == texts[0]
    assert "creator_id" not in json.loads(expected[2])
    assert json.loads(expected[3])["sources"][0]["note"] == "S1"
