"""Crawl the served site as a visitor would and check every kind of page in Chromium.

Starting from the landing page, the crawler follows same-origin links up to two
clicks deep and opens a few pages of each kind (`page_kind`: the address with
the row's key and the query's values taken out), plus the pages a visitor gets
by typing rather than clicking (a search, a broken SQL query, a wrong address).
Each page is checked at desktop and phone widths with axe-core, as the
axe-playwright-python package ships it, and for sideways scrolling; every link
and control is focused from the keyboard and must show where the focus is.

Also a script, for measuring a site by hand:
    .venv/bin/python -m tests.site_crawl http://127.0.0.1:8001 [--per-kind 3]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from axe_playwright_python.sync_playwright import Axe

from coop100.site.settings import DATABASE

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 812}}
# What axe-core's own scale calls a barrier rather than a nuisance.
BLOCKING = ("serious", "critical")
CLICKS = 2
# The finding of a page wider than the screen (axe-core has no such rule).
WIDER = "page-wider-than-screen"
PER_KIND = 3
# Addresses that name a file rather than a page (downloads, JSON, CSV, feeds);
# a static page's .html (the documentation's, say) is a page.
_FILE = re.compile(r"\.(?!html?$)[A-Za-z0-9]+$")
# A query parameter stands for its role, not its value: ?type=x and ?type=y are one
# kind. A sort shows the same page in another order: the same kind as the page.
_ROLES = (
    ("_search", "search"),
    ("_sort", ""),
    ("_facet", "facet"),
    ("_next", "next page"),
    ("sql", "sql"),
)
# Every link, button and form control a keyboard reaches, and where the focus lands.
_FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary"
# A control shows its focus when it, or a box around it (a select's wrapper, the
# SQL editor around its hidden textarea), gains an outline or a shadow on focus.
_UNFOCUSED_SCRIPT = """
(selector) => {
  const rings = element => {
    const seen = [];
    for (let e = element; e && e !== document.body; e = e.parentElement) {
      const style = getComputedStyle(e);
      const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
      seen.push(`${outline ? style.outlineStyle + style.outlineWidth : ''}|${style.boxShadow}`);
    }
    return seen.join(';');
  };
  const lost = [];
  for (const element of document.querySelectorAll(selector)) {
    const box = element.getBoundingClientRect();
    if (!box.width && !box.height) continue;  // not shown at this width
    if (document.activeElement && document.activeElement !== document.body)
      document.activeElement.blur();
    const before = rings(element);
    element.focus();
    if (document.activeElement !== element) continue;
    if (rings(element) === before)
      lost.push(element.outerHTML.replace(/\\s+/g, ' ').slice(0, 100));
  }
  return lost;
}
"""


@dataclass(frozen=True)
class Finding:
    """One failed check on one page at one width: an axe rule, or the page's width."""

    url: str
    viewport: str
    rule: str
    impact: str
    nodes: tuple[str, ...]

    def __str__(self) -> str:
        shown = "; ".join(self.nodes[:3]) + (" …" if len(self.nodes) > 3 else "")
        return f"{self.url} at {self.viewport}: {self.rule} ({self.impact}) on {shown}"


@dataclass
class Crawl:
    """What the crawl opened and what it found."""

    pages: dict[str, str] = field(default_factory=dict)  # url -> kind
    status: dict[str, int] = field(default_factory=dict)
    widths: dict[tuple[str, str], int] = field(default_factory=dict)  # (url, viewport) -> px
    findings: list[Finding] = field(default_factory=list)
    unfocused: list[Finding] = field(default_factory=list)

    def kinds(self) -> set[str]:
        return set(self.pages.values())

    def summary(self) -> str:
        wide = [f for f in self.findings if f.rule == WIDER]
        blocking = [f for f in self.findings if f.impact in BLOCKING and f.rule != WIDER]
        return (
            f"{len(self.pages)} pages of {len(self.kinds())} kinds, {len(self.widths)} page "
            f"views; {len({f.url for f in blocking})} pages with serious or critical findings, "
            f"{sum(len(f.nodes) for f in blocking)} failing elements in "
            f"{len({(f.url, f.viewport) for f in blocking})} page views; {len(wide)} page views "
            f"wider than the screen; {len(self.unfocused)} pages with controls focused unseen"
        )


def page_kind(url: str, databases: tuple[str, ...] = (DATABASE,)) -> str:
    """The kind of page at url: its path, a row's key replaced by …, and its query's roles.

    /coop100/people/simel-esim and /coop100/people/vic-van-vuuren are one kind (a
    people row), /coop100/statements?type=answer and ?type=remark another (the
    statements table, filtered).
    """
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    if len(segments) == 3 and segments[0] in databases and "-" not in segments:
        segments[2] = "…"
    roles = set()
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        role = next((r for prefix, r in _ROLES if name.startswith(prefix)), None)
        if role is None:
            role = "filter" if not name.startswith("_") else name
        if role:
            roles.add(role)
    kind = "/" + "/".join(s for s in segments if s)
    return kind + (f" ({', '.join(sorted(roles))})" if roles else "")


def _slug(kind: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", kind.lower().replace("…", "row")).strip("-") or "landing"


def _same_origin_pages(base: str, hrefs: Iterable[str]) -> list[str]:
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != base or _FILE.search(parts.path):
            continue
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return list(dict.fromkeys(found))


class Crawler:
    """One browser context on the served site, checking each page it opens."""

    def __init__(self, browser: Any, base: str, screenshots: Path | None = None) -> None:
        self.base = base.rstrip("/")
        self.context = browser.new_context(base_url=self.base, viewport=VIEWPORTS["desktop"])
        self.page = self.context.new_page()
        self.axe = Axe()
        self.screenshots = screenshots
        self.crawl = Crawl()

    def close(self) -> None:
        self.context.close()

    def run(self, typed: Iterable[str] = (), per_kind: int = PER_KIND) -> Crawl:
        """Crawl from the landing page, then open the typed addresses; return what was found."""
        counts: collections.Counter[str] = collections.Counter()
        frontier = ["/"]
        seen = set(frontier)
        for clicks in range(CLICKS + 1):
            following = []
            for url in frontier:
                kind = page_kind(url)
                if counts[kind] >= per_kind:
                    continue
                counts[kind] += 1
                links = self.check(url, kind, follow=clicks < CLICKS)
                following += [link for link in links if link not in seen]
                seen.update(links)
            frontier = following
        for url in typed:
            self.check(url, page_kind(url), follow=False)
        return self.crawl

    def check(self, url: str, kind: str, follow: bool) -> list[str]:
        """Open url at each width, record what fails, and return the pages it links to."""
        page = self.page
        page.set_viewport_size(VIEWPORTS["desktop"])
        response = page.goto(url)
        first_of_kind = kind not in self.crawl.kinds()
        self.crawl.pages[url] = kind
        self.crawl.status[url] = response.status if response else 0
        links = []
        if follow:
            hrefs = page.eval_on_selector_all(
                "a[href]:not([download])", "links => links.map(a => a.href)"
            )
            links = _same_origin_pages(self.base, hrefs)
        for name, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            self._check_view(url, name, viewport["width"])
            if first_of_kind and self.screenshots is not None:
                self.screenshots.mkdir(parents=True, exist_ok=True)
                shot = self.screenshots / f"crawl-{_slug(kind)}-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
        if first_of_kind:
            self._check_focus(url)
        return links

    def _check_view(self, url: str, viewport: str, screen: int) -> None:
        results = self.axe.run(self.page).response
        for violation in results["violations"]:
            nodes = tuple(" ".join(map(str, n["target"])) for n in violation["nodes"])
            finding = Finding(url, viewport, violation["id"], violation["impact"] or "", nodes)
            self.crawl.findings.append(finding)
        width = int(self.page.evaluate("document.documentElement.scrollWidth"))
        self.crawl.widths[(url, viewport)] = width
        if width > screen:
            widest = self.page.evaluate(_WIDEST_SCRIPT, screen)
            finding = Finding(url, viewport, WIDER, "serious", tuple(widest))
            self.crawl.findings.append(finding)

    def _check_focus(self, url: str) -> None:
        """Focus every link and control after a Tab press (as a keyboard user would)."""
        self.page.set_viewport_size(VIEWPORTS["desktop"])
        self.page.keyboard.press("Tab")
        lost = self.page.evaluate(_UNFOCUSED_SCRIPT, _FOCUSABLE)
        if lost:
            self.crawl.unfocused.append(
                Finding(url, "desktop", "focus-not-visible", "serious", tuple(lost))
            )


# What makes the page wider than the screen: elements reaching past its right edge,
# or whose content spills out of them (a long word, a wide <pre>), innermost first.
_WIDEST_SCRIPT = """
(screen) => {
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + [...e.classList].map(c => '.' + c).join('');
  const wide = [...document.body.querySelectorAll('*')].filter(e => {
    const box = e.getBoundingClientRect();
    const spills = e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1
      && getComputedStyle(e).overflowX === 'visible';
    return box.right > screen + 1 || spills;
  });
  const innermost = wide.filter(e => !wide.some(o => o !== e && e.contains(o)));
  return [`page ${document.documentElement.scrollWidth} px wide`].concat(innermost.slice(0, 5).map(
    e => `${name(e)} to ${Math.round(e.getBoundingClientRect().left + e.scrollWidth)} px`));
}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("base", help="the site's address, e.g. http://127.0.0.1:8001")
    parser.add_argument("--per-kind", type=int, default=PER_KIND)
    parser.add_argument("--typed", nargs="*", default=[], help="addresses typed, not clicked")
    parser.add_argument("--json", type=Path, help="write every page, width and finding here")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from tests.site_fixtures import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        crawler = Crawler(browser, args.base)
        crawl = crawler.run(args.typed, per_kind=args.per_kind)
        crawler.close()
        browser.close()
    for finding in crawl.findings + crawl.unfocused:
        if finding.impact in BLOCKING:
            print(finding)
    print(crawl.summary())
    if args.json:
        found = [vars(f) for f in crawl.findings + crawl.unfocused]
        pages = [{"url": u, "kind": k, "status": crawl.status[u]} for u, k in crawl.pages.items()]
        widths = [{"url": u, "viewport": v, "width": w} for (u, v), w in crawl.widths.items()]
        report = {"pages": pages, "widths": widths, "findings": found}
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
