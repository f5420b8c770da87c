"""The served site in a real browser: headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coop100.read.records import read_about
from coop100.rules.models import MODELS
from tests.conftest import RECORDS
from tests.site_fixtures import DATABASE, SCREENSHOTS

# End to end (real processes, servers, browsers): `make test-all` and CI run it.
pytestmark = pytest.mark.slow


@pytest.fixture
def page(browser: Any, served: tuple[str, int]) -> Iterator[Any]:
    """A fresh page on the served site that fails the test on any console error."""
    base, _ = served
    context = browser.new_context(base_url=base, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    context.close()
    assert errors == []


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_landing_page_and_a_download(page, site_root):
    page.goto("/")
    assert page.title() == read_about(RECORDS).title
    assert page.locator("h1").inner_text() == page.title()
    assert page.locator(".coop100-tables tbody tr").count() == len(MODELS)
    _shot(page, "landing")
    with page.expect_download() as download:
        page.locator('a[href="/data/build/csv/people.csv"]').click()
    saved = Path(download.value.path())
    assert saved.read_bytes() == (site_root / "build/csv/people.csv").read_bytes()
    with page.expect_download() as download:
        page.locator('a[href="/data/coop100.zip"]').click()
    assert Path(download.value.path()).read_bytes()[:2] == b"PK"


def test_table_page_shows_facets(page, package_rows):
    page.goto(f"/{DATABASE}/statements")
    facets = page.locator(".facet-info")
    assert facets.count() == 3
    type_facet = page.locator('.facet-info[data-column="type"]')
    types = {r["type"] for r in package_rows["statements"]}
    assert type_facet.locator("li").count() >= len(types)
    _shot(page, "table-facets")
    type_facet.locator("li a").first.click()
    page.wait_for_load_state()
    assert "type=" in page.url
    assert page.locator("table.rows-and-columns tbody tr").count() >= 1


def test_search_box_finds_statements(page, package_rows):
    page.goto(f"/{DATABASE}/statements")
    page.fill('input[name="_search"]', "displaced")
    page.locator('input[name="_search"]').press("Enter")
    page.wait_for_url("**_search=displaced**")
    expected = [r for r in package_rows["statements"] if "displac" in r["text"].lower()]
    assert page.locator("table.rows-and-columns tbody tr").count() == len(expected)
    _shot(page, "search")


def test_row_page_links_foreign_keys_by_label(page):
    page.goto(f"/{DATABASE}/statements/esim-introduction")
    # The row as stored, at the foot of the statement's page (coop100.site.pages).
    link = page.locator('.coop100-row a[href="/coop100/people/simel-esim"]')
    assert link.inner_text() == "Simel Esim"
    _shot(page, "row")
    link.click()
    page.wait_for_url("**/coop100/people/simel-esim")
    assert "Esim, Simel" in page.locator(".coop100-row").inner_text()


def test_canned_query_runs(page, package_rows):
    page.goto(f"/{DATABASE}/speakers")
    assert page.locator("h1").inner_text() == "Who spoke, and in what capacity"
    rows = page.locator("table.rows-and-columns tbody tr")
    assert rows.count() == len(package_rows["participations"])
    assert "Simel Esim" in rows.first.inner_text()
    _shot(page, "canned-query")


class _BlankPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = b"<!doctype html><title>notebook</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_page_on_another_origin_reads_ranges_and_json(browser, served, site_root):
    """What a browser notebook does: a cross-origin ranged fetch (with its preflight)."""
    base, _ = served
    # A notebook's page: another origin, served by another server (the site's own
    # pages forbid fetching elsewhere with their Content-Security-Policy).
    notebook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BlankPage)
    threading.Thread(target=notebook.serve_forever, daemon=True).start()
    context = browser.new_context()
    opened = context.new_page()
    opened.goto(f"http://127.0.0.1:{notebook.server_address[1]}/")
    got = opened.evaluate(
        """async (base) => {
            const file = await fetch(base + "/data/build/parquet/people.parquet",
                                     {headers: {Range: "bytes=-4"}});
            const rows = await fetch(base + "/coop100/people.json?_shape=array");
            return {
                status: file.status,
                range: file.headers.get("Content-Range"),
                etag: file.headers.get("ETag"),
                tail: new TextDecoder().decode(await file.arrayBuffer()),
                people: (await rows.json()).length,
            };
        }""",
        base,
    )
    context.close()
    notebook.shutdown()
    size = (site_root / "build/parquet/people.parquet").stat().st_size
    assert got["status"] == 206
    assert got["range"] == f"bytes {size - 4}-{size - 1}/{size}"
    assert got["etag"].startswith('"')
    assert got["tail"] == "PAR1"
    assert got["people"] > 0
