"""The two forms of every rule agree: the model and the column rules refuse the same values.

Each rule on a field or a row is declared once in models.py with a Python form
(what Pydantic runs on YAML) and an Arrow form (what bulk.py runs over JSON
Lines). Hypothesis generates values for every field of every model, near the
edges each rule draws, and each generated row must be accepted by both forms or
refused by both.
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from coop100.read import bulk
from coop100.read.records import Records
from coop100.rules.models import COUNTRY_CODES, FORMULA_LOOKALIKES, MODELS, Organisation, Record
from coop100.rules.tables import Column, columns

MANY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _as_json(value: Any) -> Any:
    """A field's value as a JSON Lines file gives it."""
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _texts(column: Column) -> st.SearchStrategy[str]:
    near = [
        st.text(max_size=12),
        st.from_regex(r"\s?[a-z0-9-]{1,10}\s?", fullmatch=True),
        st.from_regex(r"[0-9]{4}(-[0-9]{1,2}(-[0-9]{1,2})?)?", fullmatch=True),
        st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True),
        st.from_regex(r"[0-9]{1,2}:[0-9]{2}", fullmatch=True),
        st.from_regex(r"[A-Z]{2}", fullmatch=True),
        st.sampled_from(sorted(COUNTRY_CODES) + ["UK", "EU", "XX"]),
        st.from_regex(r"Q[0-9]{0,4}", fullmatch=True),
        st.from_regex(r"https?://[a-z.]{1,12}(/[a-z \u00a0]{0,5})?", fullmatch=True),
        st.tuples(
            st.sampled_from(["", "'", "''", '"', "\u200b", "x"]),
            st.sampled_from(list("=+-@\t\r" + FORMULA_LOOKALIKES + "a\u2212")),
            st.text(max_size=3),
        ).map("".join),
        st.tuples(st.text(max_size=3), st.characters(categories=["Cf", "Cc", "Zs"])).map("".join),
        st.sampled_from(["e\u0301", "\u00e9", "x\u00a0", "\u3000x"]),
    ]
    if column.enum:
        near.append(st.sampled_from(column.enum))
    if column.max_length is not None:
        n = column.max_length
        near.append(st.integers(n - 2, n + 2).map(lambda k: "x" * k))
    return st.one_of(near)


@functools.cache  # building a strategy (compiling its regexes) costs more than drawing
def _values(column: Column) -> st.SearchStrategy[Any]:
    if column.frictionless_type == "integer":
        kind: st.SearchStrategy[Any] = st.integers(-3, 12) | st.integers(-(2**40), 2**40)
    elif column.frictionless_type == "boolean":
        kind = st.booleans()
    else:
        kind = _texts(column)
    return st.none() | kind


@st.composite
def _rows(draw: st.DrawFn, model: type[Record], base: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Real rows of the model: one for each field with a value drawn for it, then a few
    with two fields drawn at once (which reach the rules between fields)."""
    cols = columns(model)
    changes = [[column] for column in cols]
    changes += draw(st.lists(st.lists(st.sampled_from(cols), min_size=2, max_size=2), max_size=6))
    rows = []
    for changed in changes:
        row = dict(draw(st.sampled_from(base)))
        for column in changed:
            row[column.name] = draw(_values(column))
        rows.append(row)
    return rows


def verdicts(model: type[Record], rows: list[dict[str, Any]]) -> tuple[list[bool], list[bool]]:
    """Per row: does the model refuse it, do the column rules refuse it."""
    by_model = []
    for row in rows:
        try:
            model.model_validate({k: v for k, v in row.items() if v is not None})
            by_model.append(False)
        except ValidationError:
            by_model.append(True)
    table = pa.Table.from_pylist(rows, schema=bulk.json_schema(model))
    masks = [mask for _, mask in bulk.row_problems(table, model)]
    return by_model, bulk._any(masks, table.num_rows).to_pylist()


def _base(records: Records, model: type[Record]) -> list[dict[str, Any]]:
    return [
        {name: _as_json(value) for name, value in loc.record.__dict__.items()}
        for loc in records.tables[model.table]
    ]


def _agree(model: type[Record], rows: list[dict[str, Any]]) -> None:
    by_model, by_rules = verdicts(model, rows)
    for row, refused, ruled in zip(rows, by_model, by_rules, strict=True):
        assert refused == ruled, repr(row)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.table)
def test_every_field_is_refused_alike_by_the_model_and_the_column_rules(
    records: Records, model: type[Record]
) -> None:
    MANY(given(_rows(model, _base(records, model)))(lambda rows: _agree(model, rows)))()


def test_formula_lookalikes_are_every_character_nfkc_folds_into_a_formula_start() -> None:
    found = {
        chr(c)
        for c in range(0x110000)
        if not 0xD800 <= c <= 0xDFFF
        and unicodedata.normalize("NFKC", chr(c)) in ("=", "+", "-", "@")
        and chr(c) not in "=+-@"
    }
    assert found == set(FORMULA_LOOKALIKES)


@pytest.mark.parametrize("code", ["UK", "EU", "XX"])
def test_unassigned_country_codes_are_refused_by_both_forms(code: str) -> None:
    row = {"organisation_id": "x", "name": "X", "type": "unit", "source_id": "s2", "country": code}
    assert verdicts(Organisation, [row]) == ([True], [True])


def test_the_text_rule_judges_ascii_and_other_texts_row_by_row() -> None:
    """The text rule searches only the non-ASCII texts: each row keeps its own verdict,
    in one array or across chunks."""
    from coop100.rules.models import _clean_text, _clean_text_bad

    texts = [
        "plain words",
        "caf\u00e9 au lait",
        "a tab\there",
        "e\u0301 not NFC",
        "zero\u200bwidth",
        "still ascii",
        "del\x7fchar",
        "c1 \x85 control",
        None,
        "na\u00efve ✓ 𝄞",
        "bell\x07",
    ]

    def refused(text: str) -> bool:
        try:
            _clean_text(text)
        except ValueError:
            return True
        return False

    expected = [None if t is None else refused(t) for t in texts]
    assert expected.count(True) == 6
    for values in (pa.array(texts), pa.chunked_array([texts[:3], texts[3:8], texts[8:]])):
        mask = _clean_text_bad(values)
        got = [None if t is None else m for t, m in zip(texts, mask.to_pylist(), strict=True)]
        assert got == expected
