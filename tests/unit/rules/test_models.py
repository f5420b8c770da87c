"""Each model rejects each kind of bad value, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from coop100.rules.models import (
    Affiliation,
    Event,
    Organisation,
    Person,
    Record,
    Source,
    Statement,
    StatementTopic,
)

PERSON = {
    "person_id": "ada-lovelace",
    "name": "Ada Lovelace",
    "sort_name": "Lovelace, Ada",
    "source_id": "s2",
}
ORGANISATION = {
    "organisation_id": "ilo",
    "name": "International Labour Organization",
    "type": "intergovernmental-organisation",
    "source_id": "s2",
}
SOURCE = {
    "source_id": "s2",
    "label": "S2",
    "title": "A title",
    "publisher": "ILO",
    "url": "https://www.ilo.org/x",
    "published": "2020-03-25",
    "kind": "news-item",
    "language": "en",
}
EVENT = {
    "event_id": "launch",
    "name": "Launch",
    "type": "webinar",
    "start_date": "2020-03-23",
    "description": "A webinar.",
    "source_id": "s2",
}
AFFILIATION = {
    "affiliation_id": "a-1",
    "person_id": "ada-lovelace",
    "organisation_id": "ilo",
    "role": "Chief",
    "former": True,
    "claim_key": "ada-chief",
    "preferred": True,
    "source_id": "s2",
}
STATEMENT = {
    "statement_id": "st-1",
    "event_id": "launch",
    "person_id": "ada-lovelace",
    "type": "claim",
    "text": "Cooperatives matter.",
    "source_id": "s1",
    "paragraph": 3,
}

CASES: list[tuple[str, type[Record], dict[str, Any], str, Any, str]] = [
    # (case, model, valid record, field, bad value, message fragment)
    ("wrong type", Person, PERSON, "name", 42, "must be text"),
    ("bool for text", Organisation, ORGANISATION, "country", False, "must be text"),
    ("malformed id", Person, PERSON, "person_id", "Ada_Lovelace", "is not an id"),
    ("id with space", Person, PERSON, "person_id", "ada lovelace", "is not an id"),
    ("formula =", Person, PERSON, "name", "=HYPERLINK(1)", "formula"),
    ("formula +", Statement, STATEMENT, "text", "+1 more", "formula"),
    ("formula -", Statement, STATEMENT, "text", "-2", "formula"),
    ("formula @", Statement, STATEMENT, "text", "@SUM(A1)", "formula"),
    ("control char", Statement, STATEMENT, "text", "a\x07b", "control character"),
    ("non NFC", Person, PERSON, "name", "Ju\u0308rgen", "NFC"),
    ("empty text", Statement, STATEMENT, "text", "", "empty"),
    ("padded text", Statement, STATEMENT, "text", " padded", "white space"),
    ("over-long text", Statement, STATEMENT, "text", "x" * 2001, "at most 2000"),
    ("over-long name", Person, PERSON, "name", "x" * 201, "at most 200"),
    ("bad date", Source, SOURCE, "published", "25/03/2020", "YYYY-MM-DD"),
    ("impossible date", Source, SOURCE, "published", "2020-02-30", "not a day"),
    ("date as number", Event, EVENT, "start_date", 20200323, "YYYY-MM-DD"),
    ("bad time", Event, EVENT, "start_time", "1:30pm", "HH:MM"),
    ("impossible time", Event, EVENT, "start_time", "25:00", "not a time"),
    ("bad partial date", Organisation, ORGANISATION, "founded", "1920-13", "not a day"),
    ("bad country", Organisation, ORGANISATION, "country", "Iran", "ISO 3166-1"),
    ("lower-case country", Organisation, ORGANISATION, "country", "ch", "ISO 3166-1"),
    ("bad url", Source, SOURCE, "url", "www.ilo.org", "URL"),
    ("bad wikidata", Organisation, ORGANISATION, "wikidata_id", "54129", "Wikidata"),
    ("bad enum", Organisation, ORGANISATION, "type", "charity", "Input should be"),
    ("bad language", Source, SOURCE, "language", "english", "String should match"),
    ("paragraph zero", Statement, STATEMENT, "paragraph", 0, "greater than or equal to 1"),
    ("paragraph as text", Statement, STATEMENT, "paragraph", "3", "valid integer"),
    ("bool as text", Affiliation, AFFILIATION, "preferred", "yes", "valid boolean"),
    ("negative count", Event, EVENT, "attendance_body", -1, "greater than or equal to 0"),
    ("unknown field", Person, PERSON, "nickname", "Ada", "Extra inputs"),
]


@pytest.mark.parametrize(
    ("model", "valid", "name", "bad", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_model_rejects_bad_value(
    model: type[Record], valid: dict[str, Any], name: str, bad: Any, fragment: str
) -> None:
    model.model_validate(valid)  # the base record is valid
    with pytest.raises(ValidationError) as info:
        model.model_validate({**valid, name: bad})
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [(name,)]
    assert fragment in errors[0]["msg"]


@pytest.mark.parametrize(
    ("model", "valid", "name"),
    [
        (Person, PERSON, "name"),
        (Statement, STATEMENT, "text"),
        (Event, EVENT, "start_date"),
        (Affiliation, AFFILIATION, "claim_key"),
        (StatementTopic, {"statement_id": "st-1", "topic_id": "t"}, "topic_id"),
    ],
)
def test_model_requires_field(model: type[Record], valid: dict[str, Any], name: str) -> None:
    data = dict(valid)
    del data[name]
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [((name,), "missing")]


RECORD_RULES = [
    (
        "end before start",
        Affiliation,
        AFFILIATION,
        {"start": "2006", "end": "2000"},
        "end: 2000 is before start 2006",
    ),
    (
        "end date before start",
        Event,
        EVENT,
        {"end_date": "2020-03-22"},
        "end_date: 2020-03-22 is before start_date 2020-03-23",
    ),
    (
        "own parent",
        Organisation,
        ORGANISATION,
        {"parent_organisation_id": "ilo"},
        "parent_organisation_id: an organisation cannot be its own parent",
    ),
    (
        "no speaker",
        Statement,
        STATEMENT,
        {"person_id": None},
        "person_id: a statement needs a person_id or an organisation_id",
    ),
    (
        "answers itself",
        Statement,
        STATEMENT,
        {"responds_to_statement_id": "st-1"},
        "responds_to_statement_id: a statement cannot answer itself",
    ),
]


@pytest.mark.parametrize(
    ("model", "valid", "change", "message"),
    [case[1:] for case in RECORD_RULES],
    ids=[case[0] for case in RECORD_RULES],
)
def test_record_rules(
    model: type[Record], valid: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate({**valid, **change})
    assert [e["msg"] for e in info.value.errors()] == [f"Value error, {message}"]


def test_every_field_has_a_description() -> None:
    from coop100.rules.models import MODELS

    missing = [
        f"{m.__name__}.{name}"
        for m in MODELS
        for name, info in m.model_fields.items()
        if not info.description
    ]
    assert missing == []
