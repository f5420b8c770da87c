"""The Datasette site, in process: tables, descriptions, labels, search, canned queries."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest

from coop100.load.database import csv_resources, read_descriptor
from coop100.serving import FTS_COLUMNS, VIEWS
from coop100.settings import DESCRIPTOR
from coop100.site import settings as site_settings
from coop100.site.downloads import read_downloads
from coop100.site.queries import CANNED_QUERIES
from tests.site_fixtures import DATABASE, SiteClient


@pytest.fixture(scope="module")
def resources(site_root: Path) -> dict[str, dict]:
    descriptor = read_descriptor(site_root / DESCRIPTOR)
    return {r["name"]: r for r in csv_resources(descriptor)}


def _typed(value: str, field: dict) -> object:
    """A published CSV value as Datasette's JSON gives it."""
    if value == "":
        return None
    if field["type"] == "integer":
        return int(value)
    if field["type"] == "boolean":
        return 1 if value == "true" else 0
    return value


def _rows(client: SiteClient, path: str) -> list[dict]:
    separator = "&" if "?" in path else "?"
    return client.json(f"{path}{separator}_shape=array&_size=max")


def _query(client: SiteClient, name: str) -> list[dict]:
    return _rows(client, f"/{DATABASE}/{name}.json")


def test_landing_page_explains_and_links_every_download(client, site_root):
    page = client.get("/").text
    assert "This is an open data package" in page
    links = set(re.findall(r'href="([^"]+)" download', page))
    expected = {"/data/datapackage.json", "/data/coop100.zip", f"/{DATABASE}.db"}
    # The descriptor again, at the URL that names this version of every file.
    version = read_downloads(
        site_root / site_settings.SITE_DIR / site_settings.DOWNLOADS_MOUNT
    ).version
    expected.add(f"/data/v/{version}/datapackage.json")
    for resource in read_descriptor(site_root / DESCRIPTOR)["resources"]:
        expected.add(f"/data/{resource['path']}")
    assert links == expected
    for link in sorted(links):
        response = client.get(link)
        assert response.status_code == 200, link
        assert len(response.content) > 0


def test_landing_page_lists_every_table_with_its_row_count(client, package_rows):
    page = client.get("/").text
    found = re.findall(
        r'<td[^>]*><a href="/coop100/(\w+)">\1</a></td>\s*'
        r"<td[^>]*>[^<]*</td>\s*<td[^>]*>(\d+)</td>",
        page,
    )
    assert dict(found) == {name: str(len(rows)) for name, rows in package_rows.items()}


def test_landing_page_is_cacheable_and_json_index_is_datasettes(client, package_rows):
    response = client.get("/")
    assert response.headers["cache-control"] == f"max-age={site_settings.CACHE_TTL_SECONDS}"
    assert response.headers["link"].endswith(
        '/.json; rel="alternate"; type="application/json+datasette"'
    )
    index = client.json("/.json")[DATABASE]
    assert index["tables_count"] == len(package_rows)
    assert index["views_count"] == len(VIEWS)
    # FTS5 tables and their shadow tables (_data, _idx, _docsize, _config) are hidden,
    # and so are the stored facet counts (_facet_groups, _facet_counts).
    assert index["hidden_tables_count"] == 5 * len(FTS_COLUMNS) + 2


def test_table_pages_link_their_published_files(client, resources):
    for name in resources:
        page = client.get(f"/{DATABASE}/{name}").text
        assert (
            "Download the published table: "
            f'<a href="/data/build/csv/{name}.csv" download>CSV</a> · '
            f'<a href="/data/build/parquet/{name}.parquet" download>Parquet</a>'
        ) in page, name


def test_every_page_loads_the_site_stylesheet(client):
    for path in ["/", f"/{DATABASE}", f"/{DATABASE}/statements", f"/{DATABASE}/speakers"]:
        assert '<link rel="stylesheet" href="/-/coop100.css">' in client.get(path).text, path
    response = client.get("/-/coop100.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert "dl.column-descriptions" in response.text


def test_downloads_are_the_published_bytes(client, site_root, resources):
    for resource in read_descriptor(site_root / DESCRIPTOR)["resources"]:
        served = client.get(f"/data/{resource['path']}").content
        assert served == (site_root / resource["path"]).read_bytes(), resource["path"]
    descriptor = client.get("/data/datapackage.json").content
    assert descriptor == (site_root / DESCRIPTOR).read_bytes()
    assert client.get("/data/coop100.zip").content == (site_root / "build/coop100.zip").read_bytes()


def test_nothing_outside_the_package_is_served(client):
    for path in ["/data/../records/people.yaml", "/data/build/site/metadata.json", "/data/x"]:
        assert client.get(path).status_code == 404, path


def test_every_table_has_the_package_row_count(client, package_rows):
    tables = client.json(f"/{DATABASE}.json")["tables"]
    counts = {t["name"]: t["count"] for t in tables if not t["hidden"]}
    assert counts == {name: len(rows) for name, rows in package_rows.items()}


def test_every_column_shows_its_description(client, resources):
    for name, resource in resources.items():
        page = client.get(f"/{DATABASE}/{name}").text
        shown = dict(
            (html.unescape(column), html.unescape(description))
            for column, description in re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", page)
        )
        expected = {f["name"]: f["description"] for f in resource["schema"]["fields"]}
        assert shown == expected, name
        assert resource["description"] in html.unescape(page)


def test_views_have_descriptions_for_every_column(client):
    metadata = client.ds.metadata()["databases"][DATABASE]["tables"]
    for view in VIEWS:
        columns = [c for c in client.json(f"/{DATABASE}/{view.name}.json?_size=1")["columns"]]
        assert metadata[view.name]["description"]
        assert list(metadata[view.name]["columns"]) == columns
        assert all(metadata[view.name]["columns"].values()), view.name


def test_foreign_keys_render_as_labels(client, package_rows, resources):
    labels = {
        "people": ("person_id", "name"),
        "organisations": ("organisation_id", "name"),
        "events": ("event_id", "name"),
        "topics": ("topic_id", "label"),
        "sources": ("source_id", "label"),
    }
    label_of = {
        (table, row[key]): row[label]
        for table, (key, label) in labels.items()
        for row in package_rows[table]
    }
    checked = 0
    for name, resource in resources.items():
        fks = resource["schema"].get("foreignKeys", [])
        rows = _rows(client, f"/{DATABASE}/{name}.json?_labels=on")
        for fk in fks:
            other = fk["reference"]["resource"] or name
            if other not in labels:
                continue
            column = fk["fields"][0]
            for row in rows:
                if row[column] is None:
                    continue
                assert row[column]["label"] == label_of[(other, row[column]["value"])]
                checked += 1
    assert checked > 100
    page = client.get(f"/{DATABASE}/statements").text
    assert '<a href="/coop100/people/simel-esim">Simel Esim</a>' in page


@pytest.mark.parametrize(
    ("word", "stem"),
    [("displaced", "displac"), ("statistical", "statist"), ("researchers", "research")],
)
@pytest.mark.parametrize("table", ["statements", "statements_detailed"])
def test_search_finds_the_statements_on_a_topic(client, package_rows, word, stem, table):
    found = [r["statement_id"] for r in _rows(client, f"/{DATABASE}/{table}.json?_search={word}")]
    expected = {r["statement_id"] for r in package_rows["statements"] if stem in r["text"].lower()}
    assert sorted(found) == sorted(expected)
    assert found


def test_searched_views_name_a_table_with_full_text_search():
    views = {v.name: v for v in VIEWS}
    for view, (table, key) in site_settings.VIEW_SEARCH.items():
        assert table in FTS_COLUMNS
        assert views[view].columns[key] == (table, key)


def test_the_plugin_does_not_import_pandas():
    # sqlite_utils imports pandas when installed: ~70 MB more in the served process.
    code = (
        "import sys, coop100.site.plugin; "
        "print(sorted({'sqlite_utils', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


def test_view_search_keeps_the_box_filled_and_combines_with_facets(client):
    everything = _rows(client, f"/{DATABASE}/statements_detailed.json?_search=cooperatives")
    page = client.get(f"/{DATABASE}/statements_detailed?_search=cooperatives").text
    assert '<input id="_search" type="search" name="_search" value="cooperatives">' in page
    assert f"{len(everything)} rows where search matches &#34;cooperatives&#34;" in page
    talks = _rows(
        client, f"/{DATABASE}/statements_detailed.json?_search=cooperatives&type=presentation"
    )
    assert 0 < len(talks) < len(everything)
    assert {r["type"] for r in talks} == {"presentation"}


def test_every_table_with_text_has_a_search_box(client):
    metadata = client.ds.metadata()["databases"][DATABASE]["tables"]
    for name in ["statements", "people", "organisations", "person_names", "sources", "topics"]:
        assert metadata[name]["fts_table"] == f"{name}_fts"
        assert 'name="_search"' in client.get(f"/{DATABASE}/{name}").text, name
    assert 'name="_search"' in client.get(f"/{DATABASE}/statements_detailed").text
    assert 'name="_search"' not in client.get(f"/{DATABASE}/current_affiliations").text


def test_facets_are_on_type_speaker_topic_and_organisation(client):
    facets = client.json(f"/{DATABASE}/statements.json")["facet_results"]
    assert set(facets) == {"type", "person_id", "organisation_id"}
    facets = client.json(f"/{DATABASE}/statements_detailed.json")["facet_results"]
    assert set(facets) == {"type", "speaker", "organisation", "topics"}


def test_json_api_returns_the_published_csv_rows(client, package_rows, resources):
    for name, resource in resources.items():
        fields = {f["name"]: f for f in resource["schema"]["fields"]}
        expected = [
            {column: _typed(value, fields[column]) for column, value in row.items()}
            for row in package_rows[name]
        ]
        key = resource["schema"]["primaryKey"]
        rows = _rows(client, f"/{DATABASE}/{name}.json?_sort={key[0]}")
        by_key = sorted(rows, key=lambda r: [r[k] for k in key])
        assert by_key == sorted(expected, key=lambda r: [r[k] for k in key]), name
        exported = client.get(f"/{DATABASE}/{name}.csv?_size=max").text
        reader = csv.DictReader(io.StringIO(exported))
        assert len(list(reader)) == len(expected)


def test_canned_queries_have_titles_and_descriptions(client):
    queries = client.json(f"/{DATABASE}.json")["queries"]
    assert {q["name"] for q in queries} == set(CANNED_QUERIES)
    for query in queries:
        assert query["title"] and query["description"]
        assert not query.get("write")


def _by(rows: list[dict[str, str]], key: str) -> dict[str, dict[str, str]]:
    return {row[key]: row for row in rows}


def test_speakers_query(client, package_rows):
    people = _by(package_rows["people"], "person_id")
    events = _by(package_rows["events"], "event_id")
    affiliations = _by(package_rows["affiliations"], "affiliation_id")
    organisations = _by(package_rows["organisations"], "organisation_id")
    expected = []
    for p in sorted(
        package_rows["participations"],
        key=lambda p: (
            events[p["event_id"]]["start_date"],
            p["event_id"],
            int(p["speaking_order"]),
        ),
    ):
        a = affiliations.get(p["affiliation_id"], {})
        expected.append(
            {
                "event": events[p["event_id"]]["name"],
                "speaking_order": int(p["speaking_order"]),
                "person": people[p["person_id"]]["name"],
                "role": p["role"],
                "title": a.get("role") or None,
                "organisation": organisations[a["organisation_id"]]["name"]
                if a.get("organisation_id")
                else None,
            }
        )
    assert _query(client, "speakers") == expected
    assert all(
        affiliations[p["affiliation_id"]]["preferred"] == "true"
        for p in package_rows["participations"]
        if p["affiliation_id"]
    )


@pytest.mark.parametrize("topic", ["", "decent-work", "Decent work", "decent WORK"])
def test_statements_by_topic_query(client, package_rows, topic):
    topics = _by(package_rows["topics"], "topic_id")
    chosen = {
        t["topic_id"]
        for t in topics.values()
        if topic in ("", t["topic_id"]) or topic.lower() == t["label"].lower()
    }
    rows = _rows(client, f"/{DATABASE}/statements_by_topic.json?topic={quote(topic)}")
    expected = Counter(
        (topics[r["topic_id"]]["label"], r["statement_id"])
        for r in package_rows["statement_topics"]
        if r["topic_id"] in chosen
    )
    assert len(chosen) == (len(topics) if topic == "" else 1)
    assert expected  # the chosen topic has statements, so an empty result would fail
    assert Counter((r["topic"], r["statement_id"]) for r in rows) == expected


def test_statements_by_topic_query_with_an_unknown_topic_is_empty(client):
    assert _rows(client, f"/{DATABASE}/statements_by_topic.json?topic=no-such-topic") == []


def test_organisation_tree_query(client, package_rows):
    organisations = _by(package_rows["organisations"], "organisation_id")

    def path(org_id: str) -> list[str]:
        parent = organisations[org_id]["parent_organisation_id"]
        return (path(parent) if parent else []) + [organisations[org_id]["name"]]

    expected = sorted((" > ".join(path(o)), len(path(o)) - 1, o) for o in organisations)
    rows = _query(client, "organisation_tree")
    assert [(r["path"], r["depth"], r["organisation_id"]) for r in rows] == expected


def test_disputed_facts_query(client, package_rows):
    sources = _by(package_rows["sources"], "source_id")
    claims = Counter(r["claim_key"] for r in package_rows["affiliations"])
    names: dict[str, set[str]] = {}
    for r in package_rows["person_names"]:
        names.setdefault(r["person_id"], set()).add(r["name"])
    expected = Counter(
        [
            (
                "affiliation",
                r["claim_key"],
                sources[r["source_id"]]["label"],
                r["preferred"] == "true",
            )
            for r in package_rows["affiliations"]
            if claims[r["claim_key"]] > 1
        ]
        + [
            (
                "name",
                f"name-of-{r['person_id']}",
                sources[r["source_id"]]["label"],
                r["preferred"] == "true",
            )
            for r in package_rows["person_names"]
            if len(names[r["person_id"]]) > 1
        ]
    )
    rows = _query(client, "disputed_facts")
    assert (
        Counter((r["kind"], r["fact"], r["source"], bool(r["preferred"])) for r in rows) == expected
    )
    for fact in {r["fact"] for r in rows}:
        assert sum(r["preferred"] for r in rows if r["fact"] == fact) == 1, fact


def test_speaking_order_query(client, package_rows):
    people = _by(package_rows["people"], "person_id")
    events = _by(package_rows["events"], "event_id")
    said = Counter((s["person_id"], s["event_id"]) for s in package_rows["statements"])

    def order(p: dict) -> tuple:
        event = events[p["event_id"]]
        spoke = p["speaking_order"]
        return (
            event["start_date"],
            p["event_id"],
            not spoke,
            int(spoke or 0),
            p["participation_id"],
        )

    expected = [
        (
            events[p["event_id"]]["name"],
            int(p["speaking_order"]) if p["speaking_order"] else None,
            people[p["person_id"]]["name"],
            said[(p["person_id"], p["event_id"])],
        )
        for p in sorted(package_rows["participations"], key=order)
    ]
    rows = _query(client, "speaking_order")
    found = [(r["event"], r["speaking_order"], r["person"], r["statements"]) for r in rows]
    assert found == expected
    # One event, by its id or its name.
    (launch,) = [e for e in package_rows["events"] if e["type"] == "webinar"]
    for given in (launch["event_id"], launch["name"].upper()):
        one = _rows(client, f"/{DATABASE}/speaking_order.json?event={quote(given)}")
        assert [r["event"] for r in one] == [launch["name"]] * len(one)
        assert one and one[0]["person"] == "Simel Esim"


def test_metadata_comes_from_the_package(client, site_root):
    descriptor = json.loads((site_root / DESCRIPTOR).read_text())
    metadata = client.ds.metadata()
    assert metadata["title"] == descriptor["title"]
    assert metadata["description"] == descriptor["description"]
    assert metadata["license_url"] == descriptor["licenses"][0]["path"]
    assert metadata["source_url"] == descriptor["sources"][0]["path"]


def test_row_pages_link_foreign_keys_by_label(client):
    page = client.get(f"/{DATABASE}/statements/esim-introduction").text
    assert '<a href="/coop100/people/simel-esim">Simel Esim</a>&nbsp;<em>simel-esim</em>' in page
    assert '<a href="/coop100/sources/s1">S1</a>' in page
    # and back: the person's page links to the rows that refer to it
    page = client.get(f"/{DATABASE}/people/simel-esim").text
    assert 'href="/coop100/statements?person_id=simel-esim"' in page
