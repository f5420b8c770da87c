"""Every link a visitor can reach from the landing page works and says where it goes."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from tests.site_fixtures import SiteClient

_HERE = "http://site"


class _Links(HTMLParser):
    """The href and the visible text (or image alt text) of every <a> on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href") is not None:
            self._open = [found["href"] or "", found.get("aria-label") or ""]
        elif tag == "img" and self._open is not None:
            self._open[1] += found.get("alt") or ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open[0], self._open[1].strip()))
            self._open = None


def _links(url: str, page: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(page)
    return [(urljoin(_HERE + url, href), text) for href, text in parser.links]


def test_every_link_within_two_clicks_answers_and_has_text(client: SiteClient) -> None:
    status: dict[str, int] = {}
    untitled: list[tuple[str, str]] = []
    frontier = ["/"]
    for clicks in range(3):
        following = []
        for url in dict.fromkeys(frontier):
            if url in status:
                continue
            response = client.get(url)
            status[url] = response.status_code
            if clicks == 2 or not response.headers["content-type"].startswith("text/html"):
                continue
            for link, text in _links(url, response.text):
                if not text:
                    untitled.append((url, link))
                parts = urlsplit(link)
                if f"{parts.scheme}://{parts.netloc}" == _HERE:
                    following.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        frontier = following
    assert untitled == []
    assert {url: code for url, code in status.items() if code != 200} == {}
    assert len(status) > 100  # the landing page, its tables, queries, rows and files


def test_the_landing_page_lists_no_hidden_table(client: SiteClient) -> None:
    page = client.get("/").text
    hrefs = {link for link, _ in _links("/", page)}
    assert f"{_HERE}/coop100/_facet_groups" not in hrefs
    assert f"{_HERE}/coop100/_facet_counts" not in hrefs
    assert f"{_HERE}/coop100/statements_detailed" in hrefs
