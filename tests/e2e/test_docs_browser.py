"""The documentation site as the served site delivers it, in a real browser: its
scripts and search run under the site's own Content-Security-Policy (a violation is
a console error), nothing is fetched from another origin, and axe-core finds no
serious or critical problem. Screenshots go to build/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.test_docs_site import build_docs
from tests.site_crawl import BLOCKING, VIEWPORTS
from tests.site_fixtures import SCREENSHOTS, copy_package, serving

# End to end (a real server and browser): `make test-all` and CI run it.
pytestmark = pytest.mark.slow

PAGES = {
    "home": "/docs/",
    "download": "/docs/using/download/",
    "http": "/docs/using/http/",
    "hardening": "/docs/site/hardening/",
    "performance": "/docs/performance/",
    "cli": "/docs/reference/cli/",
    "settings": "/docs/reference/settings/",
}


@pytest.fixture(scope="module")
def docs_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = copy_package(tmp_path_factory.mktemp("docs-served"))
    built = build_docs(root / "build" / "site" / "docs")
    assert built.returncode == 0, built.stderr
    with serving(root, root / "build" / "serve.log") as (base, _):
        yield base


@pytest.fixture(params=list(VIEWPORTS))
def docs_page(request: Any, browser: Any, docs_served: str) -> Iterator[tuple[str, Any]]:
    context = browser.new_context(base_url=docs_served, viewport=VIEWPORTS[request.param])
    page = context.new_page()
    errors: list[str] = []
    origins: set[str] = set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: origins.add(urlsplit(r.url).netloc))
    yield request.param, page
    context.close()
    assert errors == []
    assert origins == {urlsplit(docs_served).netloc}


@pytest.mark.parametrize("name", list(PAGES))
def test_docs_page_is_accessible_under_the_sites_csp(docs_page: tuple[str, Any], name: str) -> None:
    viewport, page = docs_page
    response = page.goto(PAGES[name])
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("html").get_attribute("lang") == "en"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"docs-{name}-{viewport}.png"), full_page=True)
    violations = Axe().run(page).response["violations"]
    serious = [v for v in violations if v["impact"] in BLOCKING]
    assert serious == [], "\n".join(
        f"{v['id']}: {[n['target'] for n in v['nodes'][:3]]}" for v in serious
    )
    # Nothing wider than the screen: wide tables wrap (docs/stylesheets/coop100.css).
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]


def test_search_runs_under_the_sites_csp(docs_page: tuple[str, Any]) -> None:
    """Material's search runs in a web worker from /docs/assets/, reading the index
    from /docs/search/: both same-origin, so the CSP lets it work."""
    viewport, page = docs_page
    page.goto(PAGES["home"])
    if viewport == "phone":
        page.locator("label.md-header__button[for=__search]").click()
    page.locator("input[name=query]").click()
    page.keyboard.type("hostile")
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=10_000)
    assert results.count() >= 1
    assert "matching" in (page.locator(".md-search-result__meta").text_content() or "")


def test_the_landing_page_links_the_docs(browser: Any, docs_served: str) -> None:
    context = browser.new_context(base_url=docs_served)
    page = context.new_page()
    page.goto("/")
    page.get_by_role("link", name="Documentation").click()
    page.wait_for_url("**/docs/")
    assert "coop100" in page.title()
    context.close()
