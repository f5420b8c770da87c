"""Every kind of page a visitor reaches is readable by everyone (the crawl: tests/site_crawl.py).

One Chromium and one `coop100 serve` for the whole crawl: from the landing page,
every kind of page within two clicks, plus what a visitor types, each checked at
desktop and phone widths with axe-core, for sideways scrolling and for a visible
keyboard focus. Screenshots of each kind at both widths go to build/screenshots/.
Without Chromium the crawl is skipped, saying why (CI has it and fails instead).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasette
import pytest

from coop100.site.controls import NAMES, name_controls
from coop100.site.queries import CANNED_QUERIES
from coop100.site.settings import CHANGES_URL
from tests.site_crawl import (
    BLOCKING,
    VIEWPORTS,
    WIDER,
    Crawl,
    Crawler,
    _same_origin_pages,
    _slug,
    page_kind,
)
from tests.site_fixtures import DATABASE, SCREENSHOTS

# What a visitor types rather than clicks, and the status each answers with.
TYPED = {
    f"/{DATABASE}/statements?_search=cooperatives": 200,
    f"/{DATABASE}/statements/-/search?_search=cooperatives": 200,
    f"/{DATABASE}?sql=select+*+from+no_such_table": 400,
    f"/{DATABASE}/statements?_timelimit=soon": 400,
    "/no-such-page": 404,
}


@pytest.fixture(scope="module")
def crawl(browser: Any, served: tuple[str, int]) -> Iterator[Crawl]:
    crawler = Crawler(browser, served[0], SCREENSHOTS)
    try:
        yield crawler.run(TYPED, per_kind=1)
    finally:
        crawler.close()


def _listed(findings: list[Any]) -> str:
    return "\n".join(str(f) for f in findings)


def test_page_kinds() -> None:
    assert page_kind("/") == "/"
    assert page_kind("/coop100/people/simel-esim") == page_kind("/coop100/people/vic-van-vuuren")
    assert page_kind("/coop100/people/simel-esim") == "/coop100/people/…"
    assert page_kind("/coop100/statements?type=answer") == "/coop100/statements (filter)"
    assert page_kind("/coop100/statements?_sort=type") == "/coop100/statements"
    assert page_kind("/coop100/statements/-/search?_search=x") == (
        "/coop100/statements/-/search (search)"
    )
    assert page_kind("/coop100?sql=select+1") == "/coop100 (sql)"
    assert page_kind("/docs/guide/querying/") == "/docs/guide/querying"


def test_the_crawl_follows_pages_of_this_site_not_files() -> None:
    links = [
        "http://site/docs/guide/index.html",
        "http://site/data/build/csv/people.csv",
        "http://site/coop100/people#top",
        "http://site/coop100/people",
        "http://site/coop100.json",
        "https://www.ilo.org/coop",
    ]
    assert _same_origin_pages("http://site", links) == ["/docs/guide/index.html", "/coop100/people"]


def test_the_crawl_reaches_every_kind_of_page(crawl: Crawl, served: tuple[str, int]) -> None:
    # Read over HTTP: Datasette's in-process client cannot run beside Playwright's loop.
    with urllib.request.urlopen(f"{served[0]}/{DATABASE}.json") as response:
        database = json.load(response)
    tables = [t["name"] for t in database["tables"] if not t["hidden"]]
    expected = {"/", f"/{DATABASE}", CHANGES_URL, f"/{DATABASE} (sql)"}
    expected |= {f"/{DATABASE}/{name}" for name in tables}
    expected |= {f"/{DATABASE}/{name}/…" for name in tables}
    expected |= {f"/{DATABASE}/{view['name']}" for view in database["views"]}
    expected |= {f"/{DATABASE}/{name}" for name in CANNED_QUERIES}
    # Facets selected: a table page filtered by a value of one of its facets.
    expected |= {f"/{DATABASE}/statements (filter)"}
    expected |= {page_kind(url) for url in TYPED}
    assert expected - crawl.kinds() == set()
    typed = {url: crawl.status[url] for url in TYPED}
    assert typed == TYPED
    broken = {url: code for url, code in crawl.status.items() if code != 200 and url not in TYPED}
    assert broken == {}
    for kind in crawl.kinds():
        for viewport in VIEWPORTS:
            assert (SCREENSHOTS / f"crawl-{_slug(kind)}-{viewport}.png").exists()


def test_no_page_has_a_serious_or_critical_finding(crawl: Crawl) -> None:
    found = [f for f in crawl.findings if f.impact in BLOCKING and f.rule != WIDER]
    assert found == [], f"{len(found)} findings:\n{_listed(found)}"


def test_no_page_is_wider_than_the_screen(crawl: Crawl) -> None:
    wide = [f for f in crawl.findings if f.rule == WIDER]
    assert wide == [], f"{len(wide)} page views scroll sideways:\n{_listed(wide)}"


def test_every_link_and_control_shows_the_keyboard_focus(crawl: Crawl) -> None:
    assert crawl.unfocused == [], _listed(crawl.unfocused)


def test_each_control_named_is_datasettes_markup_as_it_stands() -> None:
    """An upgrade of Datasette that changes one of these fails here, not silently."""
    templates = Path(datasette.__file__).parent / "templates"
    sources = "".join(p.read_text(encoding="utf-8") for p in templates.glob("*.html"))
    assert [fragment for fragment in NAMES if fragment not in sources] == []
    named = name_controls('<select name="_filter_op_1"><div class="table-wrapper">')
    assert named == (
        '<select aria-label="How to compare" name="_filter_op_1">'
        '<div aria-label="Rows" tabindex="0" role="region" class="table-wrapper">'
    )
