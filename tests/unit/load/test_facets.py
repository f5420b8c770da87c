"""Facet counts stored with the database give the pages Datasette's own counts would."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coop100.load.database import load_database
from coop100.serving import column_facets
from coop100.settings import DB_NAME, DESCRIPTOR
from coop100.site.build import Site, datasette_app, inspect_data
from coop100.site.settings import FACET_COUNTS_TABLE, FACET_GROUPS_TABLE
from tests.site_fixtures import DATABASE, SiteClient


def _client(site: Site, db_path: Path) -> SiteClient:
    inspect_path = db_path.with_name("inspect.json")
    inspect_path.write_text(json.dumps(inspect_data(db_path)))
    return SiteClient(
        datasette_app(dataclasses.replace(site, db_path=db_path, inspect_path=inspect_path))
    )


@pytest.fixture(scope="module")
def clients(
    site: Site, site_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SiteClient, SiteClient, Path]]:
    """A database with every facet value's group stored, and the same without the tables."""
    stored = tmp_path_factory.mktemp("stored") / DB_NAME
    # One row is enough to store a group: every filtered page of the real package.
    load_database(site_root / DESCRIPTOR, stored, large_group_rows=1)
    live = tmp_path_factory.mktemp("live") / DB_NAME
    shutil.copyfile(stored, live)
    with sqlite3.connect(live) as db:
        db.execute(f"drop table [{FACET_COUNTS_TABLE}]")
        db.execute(f"drop table [{FACET_GROUPS_TABLE}]")
    pair = (_client(site, stored), _client(site, live))
    yield pair[0], pair[1], stored
    for client in pair:
        client.loop.close()


def _pages(db_path: Path) -> list[str]:
    """Every table page with facets, whole and filtered to each value of each facet."""
    db = sqlite3.connect(f"file:{db_path}?immutable=1", uri=True)
    tables = {name for (name,) in db.execute("select name from sqlite_master where type='table'")}
    found = []
    for table in sorted(tables):
        for column in column_facets(table):
            found.append(f"/{DATABASE}/{table}.json")
            for (value,) in db.execute(
                f"select distinct [{column}] from [{table}] where [{column}] is not null"
            ):
                found.append(f"/{DATABASE}/{table}.json?{column}={value}")
    db.close()
    return sorted(set(found))


def _facets(client: SiteClient, path: str) -> Any:
    page = client.json(path)
    return page["facet_results"], page.get("facets_timed_out")


def test_stored_groups_cover_every_faceted_page(clients):
    stored, _, db_path = clients
    with sqlite3.connect(f"file:{db_path}?immutable=1", uri=True) as db:
        groups = db.execute(f"select count(*) from [{FACET_GROUPS_TABLE}]").fetchone()[0]
    # The whole table plus one group per value: each page but the whole-table ones.
    assert groups == len(_pages(db_path))


@pytest.mark.parametrize("extra", ["", "&_facet_size=max", "&_facet=source_id", "&_facet_size=2"])
def test_stored_facets_equal_datasettes_own_counts(clients, extra):
    stored, live, db_path = clients
    for path in _pages(db_path):
        page = path + (extra if "?" in path else "?" + extra[1:]) if extra else path
        if "_facet=source_id" in extra and "statements" not in path:
            continue
        assert _facets(stored, page) == _facets(live, page), page


def test_stored_counts_are_what_the_page_shows(site, clients, tmp_path):
    """Change a stored count and the page shows it: the page really reads the table."""
    _, _, db_path = clients
    changed = tmp_path / DB_NAME
    shutil.copyfile(db_path, changed)
    with sqlite3.connect(changed) as db:
        db.execute(
            f"update [{FACET_COUNTS_TABLE}] set count = 999 where table_name = 'statements' "
            "and filter_column = '' and column_name = 'type' and value = 'claim'"
        )
        db.execute(
            f"update [{FACET_COUNTS_TABLE}] set count = 998 where table_name = 'statements' "
            "and filter_column = 'type' and filter_value = 'claim' and column_name = 'type'"
        )
    client = _client(site, changed)
    try:
        facets, _ = _facets(client, f"/{DATABASE}/statements.json")
        assert {r["value"]: r["count"] for r in facets["type"]["results"]}["claim"] == 999
        facets, _ = _facets(client, f"/{DATABASE}/statements.json?type=claim")
        assert [(r["value"], r["count"]) for r in facets["type"]["results"]] == [("claim", 998)]
        # A filtered page that is not a stored group is counted live.
        facets, _ = _facets(client, f"/{DATABASE}/statements.json?type=claim&person_id=x")
        assert facets["type"]["results"] == []
    finally:
        client.loop.close()


def _counts(facets: dict[str, Any]) -> dict[str, list[tuple[Any, Any, int]]]:
    return {
        name: [(r["value"], r["label"], r["count"]) for r in facet["results"]]
        for name, facet in facets.items()
    }


def test_a_later_page_counts_its_facets_over_all_its_rows(clients):
    """Page two shows page one's facets, over every row the page counts, stored or live."""
    stored, live, db_path = clients
    checked: set[str] = set()
    for path in _pages(db_path):
        first_path = path + ("&" if "?" in path else "?") + "_size=2"
        first = stored.json(first_path)
        if not first["next"]:
            continue
        for client in (stored, live):
            later = client.json(f"{first_path}&_next={first['next']}")
            assert later["rows"] != first["rows"], path
            assert later["filtered_table_rows_count"] == first["filtered_table_rows_count"]
            assert _counts(later["facet_results"]) == _counts(first["facet_results"]), path
        checked.add(path.split("/")[2].split(".json")[0])
    # Paged by their key (statements), by a column then the key (affiliations), and
    # by a column then a two-column key (statement_topics).
    assert {"statements", "affiliations", "statement_topics"} <= checked
