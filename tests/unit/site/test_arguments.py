"""Table-page arguments: booleans by true/false as well as 1/0, and a blank search is none."""

from __future__ import annotations

import pytest

from coop100.site.arguments import rewritten
from tests.site_fixtures import DATABASE, SiteClient


def _rows(client: SiteClient, path: str) -> list[dict]:
    return client.json(f"/{DATABASE}/{path}&_shape=array&_size=max")


@pytest.mark.parametrize(
    ("table", "column"),
    [("affiliations", "preferred"), ("affiliations", "former"), ("person_names", "preferred")],
)
def test_booleans_filter_by_true_and_false_as_by_1_and_0(client, package_rows, table, column):
    for word, number in (("true", 1), ("false", 0)):
        expected = [r for r in package_rows[table] if r[column] == word]
        assert expected, (table, column, word)  # the package has both
        for value in (word, word.upper(), str(number)):
            rows = _rows(client, f"{table}.json?{column}={value}")
            assert len(rows) == len(expected), (column, value)
            # The JSON holds what SQLite stores: 1 and 0.
            assert {row[column] for row in rows} == {number}
        negated = _rows(client, f"{table}.json?{column}__not={word}")
        assert len(negated) == len(package_rows[table]) - len(expected)


@pytest.mark.parametrize("path", ["statements", "statements.json", "statements_detailed.json"])
@pytest.mark.parametrize("search", ["", "%20", "+%09"])
def test_a_blank_search_is_no_search(client, package_rows, path, search):
    response = client.get(f"/{DATABASE}/{path}?_search={search}")
    assert response.status_code == 200, response.text[:300]
    if path.endswith(".json"):
        assert response.json()["filtered_table_rows_count"] == len(package_rows["statements"])


def test_other_arguments_pass_unchanged():
    assert rewritten("preferred=true&name=true&_search=x", ["preferred"]) == (
        "preferred=1&name=true&_search=x"
    )
    assert rewritten("name=caf%C3%A9&_sort=name", ["preferred"]) is None
    assert rewritten("preferred__gt=true&preferred=maybe", ["preferred"]) is None
    assert rewritten("_search=&q=caf%C3%A9", []) == "q=caf%C3%A9"
