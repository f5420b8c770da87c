"""The row pages of coop100.site.pages in a real browser: accessible, keyboard-usable, narrow.

Each page type is opened in Debian's Chromium at desktop and phone widths and
checked with axe-core (as the axe-playwright-python package ships it), by
tabbing through its links, for sideways scrolling and for console errors, also
under a strict Content-Security-Policy. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.site_crawl import BLOCKING, VIEWPORTS
from tests.site_fixtures import DATABASE, SCREENSHOTS

# End to end (real processes, servers, browsers): `make test-all` and CI run it.
pytestmark = pytest.mark.slow

# What the site's headers will demand: no inline script, style or event handler.
STRICT_CSP = "default-src 'self'"

PAGES = {
    "person": f"/{DATABASE}/people/vic-van-vuuren",
    "organisation": f"/{DATABASE}/organisations/ilo-cooperatives-unit",
    "event": f"/{DATABASE}/events/ilo-coop-100-launch-webinar",
    "programme": f"/{DATABASE}/events/ilo-coop-100",
    "topic": f"/{DATABASE}/topics/cooperatives",
    "statement": f"/{DATABASE}/statements/schwettmann-future-of-work",
}


def _open(chromium: Any, base: str, viewport: dict[str, int], csp: bool = False) -> Iterator[Any]:
    """A page on the served site that fails the test on any console error."""
    context = chromium.new_context(base_url=base, viewport=viewport)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    if csp:

        def with_csp(route: Any) -> None:
            response = route.fetch()
            headers = {**response.headers, "content-security-policy": STRICT_CSP}
            route.fulfill(response=response, headers=headers)

        opened.route("**/*", with_csp)
    yield opened
    context.close()
    assert errors == []


@pytest.fixture(params=list(VIEWPORTS))
def viewed(request: Any, browser: Any, served: tuple[str, int]) -> Iterator[tuple[str, Any]]:
    base, _ = served
    for opened in _open(browser, base, VIEWPORTS[request.param]):
        yield request.param, opened


@pytest.mark.parametrize("name", list(PAGES))
def test_page_is_accessible_and_fits(viewed: tuple[str, Any], name: str) -> None:
    viewport, page = viewed
    page.goto(PAGES[name])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"page-{name}-{viewport}.png"), full_page=True)
    # Evaluated rather than added as a <script>, which a strict CSP would refuse.
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in BLOCKING] == []
    # Nothing wider than the screen: wide tables scroll inside their own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
    # Every picture has a title and points to its text alternative on the page.
    for figure in page.locator("figure.coop100-picture").all():
        assert (figure.locator("svg[role=img] > title").text_content() or "").strip()
        target = figure.locator("figcaption a").get_attribute("href")
        assert target and target.startswith("#")
        assert page.locator(target).count() == 1
    assert page.locator('a[href$=".json"]').count() >= 1
    assert page.locator("#raw-row .coop100-row").count() == 1


@pytest.mark.parametrize("name", list(PAGES))
def test_every_link_is_reached_with_the_tab_key(
    browser: Any,
    served: tuple[str, int],
    name: str,
) -> None:
    base, _ = served
    for page in _open(browser, base, VIEWPORTS["desktop"]):
        page.goto(PAGES[name])
        total = page.evaluate(
            "() => { const links = [...document.querySelectorAll('main a[href]')];"
            " links.forEach((a, i) => a.dataset.coop100Tab = i); return links.length; }"
        )
        focusable = page.evaluate(
            "document.querySelectorAll('a[href], [tabindex=\"0\"], summary, button, input').length"
        )
        reached = set()
        for _ in range(focusable + 2):
            page.keyboard.press("Tab")
            index = page.evaluate("document.activeElement.dataset.coop100Tab")
            if index is not None:
                reached.add(int(index))
        assert reached == set(range(total))
        # And a link followed from the keyboard opens its page.
        link = page.locator("main a[href^='/coop100/']").first
        target = link.get_attribute("href")
        link.focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url == base + target


@pytest.mark.parametrize("name", list(PAGES))
def test_page_works_under_a_strict_content_security_policy(
    browser: Any,
    served: tuple[str, int],
    name: str,
) -> None:
    """No inline script or style on the page: the browser refuses none (a console error)."""
    base, _ = served
    for page in _open(browser, base, VIEWPORTS["phone"], csp=True):
        response = page.goto(PAGES[name])
        assert response.headers["content-security-policy"] == STRICT_CSP
        # The pages' own stylesheet applied: the fact tables scroll in their boxes.
        if page.locator(".table-scroll").count():
            overflow = page.evaluate(
                "getComputedStyle(document.querySelector('.table-scroll')).overflowX"
            )
            assert overflow == "auto"
