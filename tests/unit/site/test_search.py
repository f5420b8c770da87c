"""Search that scales with the page: capped table-page searches and the ranked search page.

Every expectation is read from the served database itself, by FTS5 queries
written here, never by the code under test. The caps are lowered (settings are
read per request) so the small real package exercises the capped paths.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from datasette.utils import escape_fts

from coop100.site import settings
from tests.e2e.test_browser import _shot, page  # noqa: F401  (a fixture)
from tests.site_fixtures import DATABASE

WORD = "cooperatives"


@pytest.fixture()
def db(site: Any) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{site.db_path}?immutable=1", uri=True)
    yield conn
    conn.close()


def _matches(db: sqlite3.Connection, word: str, order: str = "f.rowid", bound: int = -1) -> list:
    """statement_ids of the matches of word, the first `bound` by rowid, in order."""
    rowids = db.execute(
        "select rowid from statements_fts where statements_fts match ? order by rowid limit ?",
        [escape_fts(word), bound],
    ).fetchall()
    last = rowids[-1][0] if rowids else 0
    return [
        row[0]
        for row in db.execute(
            "select s.statement_id from statements_fts f join statements s on s.rowid = f.rowid "
            f"where statements_fts match ? and f.rowid <= ? order by {order}",
            [escape_fts(word), last],
        )
    ]


def _all_pages(client: Any, path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    first = None
    while path:
        body = client.json(path)
        first = first or body
        rows += body["rows"]
        next_url = body["next_url"]
        path = next_url and urlsplit(next_url)._replace(scheme="", netloc="").geturl()
    assert first is not None
    return rows, first


def test_a_word_under_the_caps_is_every_match_most_relevant_first(client, db):
    expected = _matches(db, WORD, order="f.rank")
    assert 1 < len(expected) < min(settings.SEARCH_RANK_CAP, settings.SEARCH_MATCH_CAP)
    rows, body = _all_pages(client, f"/{DATABASE}/statements/-/search.json?_search={WORD}&")
    assert [r["statement_id"] for r in rows] == expected
    assert body["count"] == len(expected) and body["count_capped"] is False
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    table = client.json(f"/{DATABASE}/statements.json?_search={WORD}&_size=max")
    assert sorted(r[0] for r in table["rows"]) == sorted(expected)
    assert table["filtered_table_rows_count"] == len(expected)
    assert "stopped" not in table["human_description_en"]


def test_a_word_past_the_caps_ranks_and_counts_its_first_matches(client, db, monkeypatch):
    total = len(_matches(db, WORD))
    monkeypatch.setattr(settings, "SEARCH_MATCH_CAP", total - 2)
    monkeypatch.setattr(settings, "SEARCH_RANK_CAP", total - 4)
    rows, body = _all_pages(client, f"/{DATABASE}/statements/-/search.json?_search={WORD}&")
    assert [r["statement_id"] for r in rows] == _matches(db, WORD, "f.rank", total - 4)
    assert (body["count"], body["count_capped"], body["ranked"]) == (total - 2, True, total - 4)
    html = client.get(f"/{DATABASE}/statements/-/search?_search={WORD}").text
    assert f"More than {total - 2:,} matches (counting stops there)" in html
    assert f"in order of relevance among the first {total - 4:,} matches" in html


@pytest.mark.parametrize(
    "path",
    [
        f"statements.json?_search={WORD}",
        f"statements.json?_search_text={WORD}",
        f"statements.json?_search={WORD}&_searchmode=raw",
        f"statements_detailed.json?_search={WORD}",
    ],
)
def test_table_pages_cut_a_common_search_at_the_cap_and_say_so(client, db, monkeypatch, path):
    cap = len(_matches(db, WORD)) - 3
    monkeypatch.setattr(settings, "SEARCH_MATCH_CAP", cap)
    body = client.json(f"/{DATABASE}/{path}&_size=max&_facet=type&_shape=objects")
    assert sorted(r["statement_id"] for r in body["rows"]) == sorted(_matches(db, WORD, bound=cap))
    assert body["filtered_table_rows_count"] == cap
    assert f"stopped at its first {cap:,} matches" in body["human_description_en"]
    assert sum(v["count"] for v in body["facet_results"]["type"]["results"]) == cap
    html = client.get(f"/{DATABASE}/{path.replace('.json', '')}").text
    assert f"{cap:,} rows where search" in html
    assert f"stopped at its first {cap:,} matches (more rows match" in html


def test_a_capped_search_still_combines_with_filters(client, db, monkeypatch):
    cap = len(_matches(db, WORD)) - 3
    monkeypatch.setattr(settings, "SEARCH_MATCH_CAP", cap)
    first = set(_matches(db, WORD, bound=cap))
    talks = {
        row[0]
        for row in db.execute("select statement_id from statements where type = 'presentation'")
    }
    body = client.json(f"/{DATABASE}/statements.json?_search={WORD}&type=presentation&_size=max")
    assert {r[0] for r in body["rows"]} == first & talks
    assert body["rows"]


def test_exactly_cap_matches_are_not_called_capped(client, db, monkeypatch):
    monkeypatch.setattr(settings, "SEARCH_MATCH_CAP", len(_matches(db, WORD)))
    body = client.json(f"/{DATABASE}/statements.json?_search={WORD}")
    assert "stopped" not in body["human_description_en"]
    ranked = client.json(f"/{DATABASE}/statements/-/search.json?_search={WORD}")
    assert ranked["count_capped"] is False


def test_the_statements_page_links_its_search_to_the_ranked_page(client):
    html = client.get(f"/{DATABASE}/statements?_search={WORD}").text
    assert f'href="/{DATABASE}/statements/-/search?_search={WORD}"' in html
    html = client.get(f"/{DATABASE}/statements/-/search?_search={WORD}").text
    assert f'href="/{DATABASE}/statements?_search={WORD}"' in html
    assert f"<mark>{WORD}</mark>" in html.lower()


@pytest.mark.parametrize("bad", ["x", "-1", "1000000000"])
def test_a_bad_offset_is_a_short_400(client, bad):
    response = client.get(f"/{DATABASE}/statements/-/search.json?_search={WORD}&_next={bad}")
    assert response.status_code == 400
    assert len(response.text) < 200


def test_no_search_and_no_match_are_empty_pages(client):
    for query in ("", "zzzznotaword"):
        body = client.json(f"/{DATABASE}/statements/-/search.json?_search={query}")
        assert (body["rows"], body["count"], body["next_url"]) == ([], 0, None)
        assert client.get(f"/{DATABASE}/statements/-/search?_search={query}").status_code == 200


def test_a_streamed_export_still_has_every_match(client, db, monkeypatch):
    monkeypatch.setattr(settings, "SEARCH_MATCH_CAP", 2)
    exported = client.get(f"/{DATABASE}/statements.csv?_search={WORD}&_stream=on").text
    found = {row["statement_id"] for row in csv.DictReader(io.StringIO(exported))}
    assert found == set(_matches(db, WORD))


@pytest.mark.parametrize("query", ['"', "a OR", "NEAR(", "*", "x:y", "^x"])
def test_odd_searches_answer_200_or_a_short_400(client, query):
    for path in ("statements/-/search.json", "statements/-/search"):
        response = client.get(f"/{DATABASE}/{path}", params={"_search": query})
        assert response.status_code in (200, 400), (query, response.status_code)
        if response.status_code == 400:
            assert len(response.text) < 300


def test_the_ranked_page_in_a_browser(page, db):  # noqa: F811  (the fixture)
    """From the statements page's search to the ranked page, in Debian's Chromium."""
    page.goto(f"/{DATABASE}/statements")
    page.fill('input[name="_search"]', WORD)
    page.locator('input[name="_search"]').press("Enter")
    page.wait_for_url(f"**_search={WORD}**")
    page.locator(".coop100-search-link a").click()
    page.wait_for_url(f"**/-/search?_search={WORD}")
    results = page.locator("ol.coop100-search-results li")
    assert results.count() == len(_matches(db, WORD))
    assert results.first.locator("a").inner_text() == _matches(db, WORD, "f.rank")[0]
    assert results.first.locator("mark").count() >= 1
    _shot(page, "search-ranked")
