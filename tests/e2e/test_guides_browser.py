"""The loading snippets and the codebook end to end: the snippets run against the served
site, and the pages work in a real browser (axe-core, 375 px, one-click copy, strict CSP)."""

from __future__ import annotations

import html
import re
import urllib.request
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.test_pages_browser import _open
from tests.site_crawl import BLOCKING, VIEWPORTS
from tests.site_fixtures import DATABASE

pytestmark = pytest.mark.slow


def _snippets(base: str, table: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{base}/{DATABASE}/{table}") as response:
        page = response.read().decode("utf-8")
    found = re.findall(r'<code id="code-([a-z]+)"[^>]*>(.*?)</code>', page, re.S)
    return {ident: html.unescape(code) for ident, code in found}


@pytest.mark.parametrize("ident", ["pandas", "polars", "frictionless"])
def test_python_snippets_read_the_table_from_the_served_site(
    served: tuple[str, int], package_rows: dict[str, list[dict[str, str]]], ident: str
) -> None:
    """Run as a reader would paste them. DuckDB's and R's need httpfs and R, which
    would be fetched from the network: their URLs are checked by test_guides."""
    base, _ = served
    code = _snippets(base, "events")[ident]
    scope: dict[str, Any] = {}
    exec(code, scope)  # noqa: S102 - the site's own snippet, run against the test server
    events = scope["events"]
    ids = [row["event_id"] for row in package_rows["events"]]
    if ident == "pandas":
        assert events["event_id"].tolist() == ids
    elif ident == "polars":
        assert events["event_id"].to_list() == ids
    else:
        assert [row["event_id"] for row in events] == ids


def test_copy_button_copies_the_snippet(browser: Any, served: tuple[str, int]) -> None:
    base, _ = served
    # The site's own CSP: script from 'self' and Datasette's hashed inline scripts only.
    for page in _open(browser, base, VIEWPORTS["phone"]):
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page.goto(f"/{DATABASE}/people")
        page.locator("details.coop100-snippets summary").click()
        button = page.get_by_role("button", name="Copy the polars code")
        button.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#code-polars").text_content()
        assert "pl.read_parquet(" in copied
        assert page.locator("#coop100-copy-status").text_content() == "Copied the polars code."


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("path", [f"/{DATABASE}/statements", "/codebook"])
def test_snippets_and_codebook_are_accessible_and_fit(
    browser: Any,
    served: tuple[str, int],
    path: str,
    viewport: str,
) -> None:
    base, _ = served
    for page in _open(browser, base, VIEWPORTS[viewport]):
        page.goto(path)
        if page.locator("details.coop100-snippets").count():
            page.locator("details.coop100-snippets summary").click()
            scope = "details.coop100-snippets"
        else:
            scope = "main, .content"
        violations = Axe().run(page, context=scope.split(",")[0]).response["violations"]
        assert [v["id"] for v in violations if v["impact"] in BLOCKING] == []
        # Nothing of ours is wider than the screen: code wraps, codebook tables scroll.
        width = VIEWPORTS[viewport]["width"]
        wider = page.evaluate(
            "(scope) => [...document.querySelectorAll(scope + ' *')]"
            ".filter(e => !e.closest('.table-scroll') && e.getBoundingClientRect().right > "
            + str(width)
            + ").map(e => e.tagName)",
            scope.split(",")[0],
        )
        assert wider == []
