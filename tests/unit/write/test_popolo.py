"""The Popolo export: valid against the Popolo project's own JSON Schemas (draft-03,
vendored in tests/popolo-schemas/), true to the tables, and loaded by a Popolo reader
(mySociety's everypolitician-popolo)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pyarrow as pa
import pytest
from popolo_data.importer import Popolo
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT3

from coop100 import settings
from coop100.read.bulk import read_tables
from coop100.read.records import Records
from coop100.rules.models import MODELS
from coop100.write.popolo import _ENCODER, PopoloWriter, popolo, write_popolo
from tests.conftest import RECORDS, ROOT
from tests.site_fixtures import fixture_package

sys.path.insert(0, str(ROOT / "benchmarks"))
import synth  # noqa: E402

SCHEMAS = Path(__file__).parents[2] / "popolo-schemas"
COLLECTIONS = {
    "persons": "person",
    "organizations": "organization",
    "memberships": "membership",
    "events": "event",
    "speeches": "speech",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    data = json.loads((fixture_package() / settings.POPOLO_FILE).read_text(encoding="utf-8"))
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
    popolo = Popolo.from_filename(str(fixture_package() / settings.POPOLO_FILE))
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
    descriptor = json.loads((fixture_package() / "datapackage.json").read_text(encoding="utf-8"))
    (resource,) = [r for r in descriptor["resources"] if r["name"] == settings.POPOLO_RESOURCE]
    assert resource["path"] == settings.POPOLO_FILE
    assert resource["mediatype"] == "application/json"
    assert resource["hash"].startswith("sha256:")


def test_arrow_speeches_are_the_python_speeches(tmp_path: Path) -> None:
    """The speeches' lines are built in Arrow; they must be what the encoder writes."""
    from coop100.write.popolo import speech_lines

    tables = read_tables(RECORDS).tables
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


def test_arrow_memberships_are_the_python_memberships() -> None:
    """The memberships' lines are built from Arrow too; they must be what the encoder writes."""
    from coop100.write.popolo import _citer, _sources, _texts, membership_lines

    tables = read_tables(RECORDS).tables
    affiliations = tables["affiliations"]
    n = affiliations.num_rows
    assert n >= 8
    edits: dict[str, dict[int, Any]] = {
        "role": {0: 'Chief "co-op" officer \\ naïve ✓ 𝄞', 1: "", 2: None},
        "organisation_id": {3: None},
        "claim_key": {4: 'a "quoted" claim', 5: "c:\\path"},
        "start": {0: "2020", 1: "2020-03", 2: "2020-03-23", 3: "March 2020", 4: "", 5: None},
        "end": {6: "2020-3", 7: "20201"},
        "preferred": {0: False, 1: True},
        "paragraph": {2: None},
    }
    for column, changes in edits.items():
        values = affiliations[column].to_pylist()
        for row, value in changes.items():
            values[row] = value
        field = affiliations.schema.field(column)
        affiliations = affiliations.set_column(
            affiliations.column_names.index(column), field, pa.array(values, field.type)
        )
    tables["affiliations"] = affiliations
    cite = _citer(_sources(tables["sources"]))
    expected = [_ENCODER.encode(item) for item in popolo(tables)["memberships"]]
    assert list(_texts(membership_lines(affiliations, cite, {}))) == expected
    assert json.loads(expected[0])["role"] == edits["role"][0]
    assert "start_date" not in json.loads(expected[3])
    # A text with a control character (the models refuse them) is encoded the slow way.
    roles = affiliations["role"].to_pylist()
    roles[0] = "tab\there"
    tables["affiliations"] = affiliations.set_column(
        affiliations.column_names.index("role"), "role", pa.array(roles, pa.string())
    )
    expected = [_ENCODER.encode(item) for item in popolo(tables)["memberships"]]
    assert list(_texts(membership_lines(tables["affiliations"], cite, {}))) == expected
    assert n == len(expected)


@pytest.mark.parametrize("start", [0, 1, 5])
def test_only_the_texts_that_need_it_are_escaped(start: int) -> None:
    """_escape rewrites the rows holding `"` or `\\`, found in the array's bytes at once;
    the result is Arrow's replace_substring of every row, slices and nulls included."""
    import pyarrow.compute as pc

    from coop100.write.popolo import _escape, _rows_holding

    texts = ["plain", 'a "quote"', None, "back\\slash", "", 'both \\ and "', "naïve ✓", "x"]
    # Many rows to escape (all are rewritten) and few (only those are).
    sparse = ["a", None, "", "naïve"] * 10 + ['q"'] + ["b"] * 20 + ["c\\"]
    arrays = (pa.array(texts * 3), pa.array(sparse))
    for values in (*(a.slice(start) for a in arrays), pa.chunked_array([texts, sparse])):
        every = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
        escaped = _escape(values)
        assert escaped.to_pylist() == every.to_pylist()
    clean = pa.array(["no", "escapes", None, "here"]).slice(1)
    assert _escape(clean) is clean
    # Each row once, however many it holds; an empty row is never one.
    many = pa.array(['"' * 5000, "", 'x"\\', "y", "\\" * 3])
    assert _rows_holding(many, (b'"', b"\\")).tolist() == [0, 2, 4]


# The streamed writer (PopoloWriter) against the document written in one pass.


def _one_pass(tables: dict[str, pa.Table]) -> bytes:
    """The document as the one-pass writer wrote it: every object a dict from
    `popolo()` encoded by `_ENCODER`, the collections one after another."""
    text = ""
    for number, (name, items) in enumerate(popolo(tables).items()):
        lines = [_ENCODER.encode(item) for item in items]
        text += ("{" if number == 0 else ",\n") + json.dumps(name) + ": ["
        text += "".join(("\n" if i == 0 else ",\n") + line for i, line in enumerate(lines))
        text += "\n]"
    return (text + "}\n").encode("utf-8")


def _stream(tables: dict[str, pa.Table], path: Path, sizes: tuple[int, ...] = (7,)) -> None:
    """Feed the tables to a PopoloWriter in batches of the given sizes, in turn,
    alternately as Arrow tables and record batches."""
    with PopoloWriter(path) as writer:
        for model in MODELS:
            table, start, turn = tables[model.table], 0, 0
            while start < table.num_rows:
                piece = table.slice(start, sizes[turn % len(sizes)])
                writer.add(
                    model.table, piece if turn % 2 else piece.combine_chunks().to_batches()[0]
                )
                start, turn = start + piece.num_rows, turn + 1


def _shuffled(table: pa.Table, seed: int) -> pa.Table:
    return table.take(np.random.default_rng(seed).permutation(table.num_rows))


def test_streamed_package_is_the_published_file(tmp_path: Path) -> None:
    """Batches of 7 rows, or 1, 2, 3 and 64 in turn, give the published file's bytes."""
    tables = read_tables(RECORDS).tables
    published = (fixture_package() / settings.POPOLO_FILE).read_bytes()
    assert _one_pass(tables) == published
    for sizes in [(7,), (1, 2, 3, 64)]:
        _stream(tables, tmp_path / "popolo.json", sizes)
        assert (tmp_path / "popolo.json").read_bytes() == published
    write_popolo(tables, tmp_path / "popolo.json")
    assert (tmp_path / "popolo.json").read_bytes() == published
    assert [p.name for p in tmp_path.iterdir()] == ["popolo.json"]  # no temporary files


def test_streamed_archive_is_the_one_pass_document(tmp_path: Path) -> None:
    """A synthetic archive with its rows shuffled: each person's spellings keep their
    order, speeches are numbered within their event across batches."""
    synth.write_archive(tmp_path / "archive", 2000)
    tables = read_tables(tmp_path / "archive" / "records").tables
    for seed, table in enumerate(["people", "person_names", "affiliations", "statements"]):
        tables[table] = _shuffled(tables[table], seed)
    names = tables["person_names"]
    assert names["person_id"].to_pylist() != sorted(names["person_id"].to_pylist())
    # A spelling of nobody in people, and a statement said by an organisation.
    stray = names.slice(0, 1).to_pylist()[0] | {"person_name_id": "x-s1", "person_id": "x"}
    tables["person_names"] = pa.concat_tables(
        [names, pa.Table.from_pylist([stray], schema=names.schema)]
    )
    statements = tables["statements"]
    speakers = statements["person_id"].to_pylist()
    speakers[5] = None
    tables["statements"] = statements.set_column(
        statements.column_names.index("person_id"), "person_id", pa.array(speakers)
    )
    expected = _one_pass(tables)
    assert expected.count(b'"other_names"') > 20
    _stream(tables, tmp_path / "popolo.json", (7, 100, 1, 65_536))
    assert (tmp_path / "popolo.json").read_bytes() == expected
    # No spellings at all, and an empty table fed as no batch at all.
    tables["person_names"] = names.slice(0, 0)
    tables["events"] = tables["events"].slice(0, 0)
    _stream(tables, tmp_path / "popolo.json", (13,))
    assert (tmp_path / "popolo.json").read_bytes() == _one_pass(tables)


def test_batches_without_the_schemas_metadata_are_taken(tmp_path: Path) -> None:
    """A table's batches may come with or without the published fields' descriptions."""
    tables = read_tables(RECORDS).tables
    with PopoloWriter(tmp_path / "popolo.json") as writer:
        for model in MODELS:
            for number, batch in enumerate(tables[model.table].to_batches(max_chunksize=2)):
                plain = pa.schema([(f.name, f.type) for f in batch.schema])
                writer.add(model.table, batch if number % 2 else batch.cast(plain))
    assert (tmp_path / "popolo.json").read_bytes() == (
        fixture_package() / settings.POPOLO_FILE
    ).read_bytes()


def test_an_error_leaves_the_published_file(tmp_path: Path) -> None:
    path = tmp_path / "popolo.json"
    path.write_text("as published\n")
    tables = read_tables(RECORDS).tables
    with pytest.raises(RuntimeError), PopoloWriter(path) as writer:
        for model in MODELS:
            writer.add(model.table, tables[model.table])
            if model.table == "affiliations":
                raise RuntimeError("the build failed")
    assert path.read_text() == "as published\n"
    assert [p.name for p in tmp_path.iterdir()] == ["popolo.json"]


def test_tables_out_of_order_are_refused(tmp_path: Path) -> None:
    tables = read_tables(RECORDS).tables
    with pytest.raises(ValueError, match="'people' rows came after 'statements' rows"):
        with PopoloWriter(tmp_path / "popolo.json") as writer:
            writer.add("statements", tables["statements"])
            writer.add("people", tables["people"])
    with pytest.raises(ValueError, match="'persons' is not a table of the package"):
        with PopoloWriter(tmp_path / "popolo.json") as writer:
            writer.add("persons", tables["people"])
    assert list(tmp_path.iterdir()) == []
