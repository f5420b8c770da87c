"""The row pages of coop100.site.pages say what the package says, every fact with its source.

Expected facts are computed here from the published CSVs, not from the pages'
own queries: a page that drops a spelling, a rival claim, a source, a statement
or an answer, or marks the wrong fact disputed, fails.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from coop100.pipeline import build
from coop100.site.build import build_site, datasette_app
from coop100.site.pages import PAGE_SIZE
from tests.site_fixtures import DATABASE, ROOT, SiteClient, fixture_package

_VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area", "base"}


class Element:
    """An HTML element: its tag, attributes, children and text."""

    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    @property
    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return re.sub(r"\s+", " ", unescape("".join(parts).replace("\xa0", " "))).strip()

    def all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Every element below this one with the tag and attributes (class: one of its classes)."""
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if (tag is None or child.tag == tag) and all(
                (v in (child.attrs.get("class") or "").split())
                if k == "class_"
                else child.attrs.get(k) == v
                for k, v in attrs.items()
            ):
                found.append(child)
            found += child.all(tag, **attrs)
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]

    def child(self, tag: str) -> Element:
        """The first child element (not any descendant) with the tag."""
        return next(c for c in self.children if isinstance(c, Element) and c.tag == tag)

    def hrefs(self) -> list[str]:
        return [str(a.attrs.get("href")) for a in self.all("a")]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in _VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)

    def handle_entityref(self, name: str) -> None:
        self.current.children.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.current.children.append(f"&#{name};")


def parse(html: str) -> Element:
    builder = _Builder()
    builder.feed(html)
    return builder.root


def _csv(table: str) -> list[dict[str, str]]:
    with (fixture_package() / "build" / "csv" / f"{table}.csv").open(
        encoding="utf-8", newline=""
    ) as fh:
        return list(csv.DictReader(fh))


def _ids(table: str, key: str) -> list[str]:
    return [row[key] for row in _csv(table)]


class Package:
    """The published CSVs, indexed the ways the pages need."""

    def __init__(self, rows: dict[str, list[dict[str, str]]]) -> None:
        self.rows = rows
        self.by_id = {
            table: {r[key]: r for r in rows[table]}
            for table, key in (
                ("people", "person_id"),
                ("organisations", "organisation_id"),
                ("events", "event_id"),
                ("topics", "topic_id"),
                ("statements", "statement_id"),
                ("sources", "source_id"),
                ("affiliations", "affiliation_id"),
            )
        }
        self.topics_of: dict[str, list[str]] = defaultdict(list)
        for row in rows["statement_topics"]:
            self.topics_of[row["statement_id"]].append(row["topic_id"])
        self.claims = Counter(a["claim_key"] for a in rows["affiliations"])

    def cite(self, row: dict[str, str]) -> str:
        """How a page cites the source of row: [S1 ¶ 3], or [S2]."""
        label = self.by_id["sources"][row["source_id"]]["label"]
        return f"[{label} ¶ {row['paragraph']}]" if row.get("paragraph") else f"[{label}]"

    def speaker(self, statement: dict[str, str]) -> str:
        if statement["person_id"]:
            return self.by_id["people"][statement["person_id"]]["name"]
        return self.by_id["organisations"][statement["organisation_id"]]["name"]


@pytest.fixture(scope="module")
def package(package_rows: dict[str, list[dict[str, str]]]) -> Package:
    return Package(package_rows)


def _page(client: SiteClient, table: str, key: str) -> Element:
    response = client.get(f"/{DATABASE}/{table}/{key}")
    assert response.status_code == 200, response.text[:500]
    return parse(response.text)


def _section(page: Element, heading_id: str) -> Element:
    return page.one("section", **{"aria-labelledby": heading_id})


def _row_with(table: Element, *texts: str) -> Element:
    """The one table row holding all of texts."""
    rows = [tr for tr in table.all("tr") if all(t in tr.text for t in texts)]
    assert len(rows) >= 1, (texts, [tr.text for tr in table.all("tr")])
    return rows[0]


def _article(page: Element, statement_id: str) -> Element:
    return page.one("article", **{"aria-label": f"Statement {statement_id}"})


def _check_statement(article: Element, package: Package, statement: dict[str, str]) -> None:
    text = article.text
    assert statement["text"] in text
    assert package.cite(statement) in text
    for topic_id in package.topics_of[statement["statement_id"]]:
        assert package.by_id["topics"][topic_id]["label"] in text
        assert f"/{DATABASE}/topics/{topic_id}" in article.hrefs()
    answered = statement["responds_to_statement_id"]
    if answered:
        assert f"/{DATABASE}/statements/{answered}" in article.hrefs()
        assert "Answers " + package.speaker(package.by_id["statements"][answered]) in text
    for other in package.rows["statements"]:
        if other["responds_to_statement_id"] == statement["statement_id"]:
            assert f"/{DATABASE}/statements/{other['statement_id']}" in article.hrefs()


def _check_sources_listed(page: Element, package: Package) -> None:
    """Every source a page cites is in its list of sources, with its link."""
    listed = page.one("section", class_="coop100-sources")
    cited = set(re.findall(r"\[([^\]¶]+?)(?: ¶ \d)?\]", page.one("main").text))
    labels = {s["label"]: s for s in package.rows["sources"]}
    cited &= set(labels)
    assert cited
    for label in cited:
        item = listed.one("li", id=f"source-{labels[label]['source_id']}")
        assert labels[label]["title"] in item.text
        if labels[label]["url"]:
            assert labels[label]["url"] in item.hrefs()


def _check_raw_row(page: Element, table: str, key: str) -> None:
    raw = page.one("section", id="raw-row")
    assert key in raw.text
    assert f"/{DATABASE}/{table}/{key}.json" in page.hrefs()


@pytest.mark.parametrize("person_id", _ids("people", "person_id"))
def test_person_page(client: SiteClient, package: Package, person_id: str) -> None:
    page = _page(client, "people", person_id)
    person = package.by_id["people"][person_id]
    assert page.one("h1").text == person["name"]
    names = [n for n in package.rows["person_names"] if n["person_id"] == person_id]
    section = _section(page, "names")
    for name in names:
        row = _row_with(section, name["name"], package.cite(name))
        assert ("not preferred" not in row.text) == (name["preferred"] == "true")
    assert ("Disputed" in section.text) == (len({n["name"] for n in names}) > 1)

    section = _section(page, "roles")
    claims = section.all("div", class_="claim")
    affiliations = [a for a in package.rows["affiliations"] if a["person_id"] == person_id]
    assert len(claims) == len({a["claim_key"] for a in affiliations})
    for a in affiliations:
        (claim,) = [c for c in claims if f"({a['claim_key']})" in c.text]
        row = _row_with(claim, a["role"] or "(no title given)", package.cite(a), a["note"])
        assert ("not preferred" not in row.text) == (a["preferred"] == "true")
        if a["organisation_id"]:
            assert package.by_id["organisations"][a["organisation_id"]]["name"] in row.text
        assert ("Disputed" in claim.text) == (package.claims[a["claim_key"]] > 1)

    section = _section(page, "events")
    for p in package.rows["participations"]:
        if p["person_id"] != person_id:
            continue
        event = package.by_id["events"][p["event_id"]]
        others = sum(1 for q in package.rows["participations"] if q["event_id"] == p["event_id"])
        row = _row_with(
            section, event["name"], p["role"], f"{p['speaking_order']} of {others}", package.cite(p)
        )
        assert ("Disputed" in row.text) == bool(p["note"])
        if p["note"]:
            assert p["note"] in row.text
        if p["affiliation_id"]:
            assert package.by_id["affiliations"][p["affiliation_id"]]["role"] in row.text

    said = [s for s in package.rows["statements"] if s["person_id"] == person_id]
    articles = _section(page, "statements").all("article")
    assert [a.attrs["aria-label"] for a in articles] == [
        f"Statement {s['statement_id']}" for s in said
    ]
    for statement in said:
        _check_statement(_article(page, statement["statement_id"]), package, statement)
    _check_sources_listed(page, package)
    _check_raw_row(page, "people", person_id)


@pytest.mark.parametrize("organisation_id", _ids("organisations", "organisation_id"))
def test_organisation_page(client: SiteClient, package: Package, organisation_id: str) -> None:
    page = _page(client, "organisations", organisation_id)
    organisations = package.by_id["organisations"]
    organisation = organisations[organisation_id]
    assert organisation["name"] in page.one("h1").text
    assert package.cite(organisation) in page.one("dl", class_="coop100-details").text
    tree = page.one("div", id="tree-list")
    path, parent = [], organisation["parent_organisation_id"]
    while parent:
        path.insert(0, organisations[parent]["name"])
        parent = organisations[parent]["parent_organisation_id"]
    if path:
        assert "Part of: " + " › ".join(path) + "." in tree.text
    else:
        assert "not part of any other organisation" in tree.text
    for child in package.rows["organisations"]:
        if child["parent_organisation_id"] == organisation_id:
            (item,) = [li for li in tree.all("li") if child["name"] in li.text]
            assert f"/{DATABASE}/organisations/{child['organisation_id']}" in item.hrefs()
            assert package.cite(child) in item.text
    assert page.all("svg", role="img")  # the tree, drawn
    section = _section(page, "people")
    for a in package.rows["affiliations"]:
        if a["organisation_id"] != organisation_id:
            continue
        person = package.by_id["people"][a["person_id"]]["name"]
        row = _row_with(section, person, a["role"] or "(no title given)", package.cite(a))
        assert ("not preferred" not in row.text) == (a["preferred"] == "true")
        assert ("Disputed" in row.text) == (package.claims[a["claim_key"]] > 1)
    for s in package.rows["statements"]:
        if s["organisation_id"] == organisation_id:
            _check_statement(_article(page, s["statement_id"]), package, s)
    _check_raw_row(page, "organisations", organisation_id)


@pytest.mark.parametrize("event_id", _ids("events", "event_id"))
def test_event_page(client: SiteClient, package: Package, event_id: str) -> None:
    page = _page(client, "events", event_id)
    event = package.by_id["events"][event_id]
    assert page.one("h1").text == event["name"]
    details = page.one("dl", class_="coop100-details")
    assert event["start_date"] in details.text
    for column in ("mode", "platform", "occasion"):
        assert event[column] in details.text
    if event["attendance_summary"] and event["attendance_body"]:
        assert f"over {event['attendance_summary']}" in details.text
        assert f"more than {event['attendance_body']}" in details.text
        disputed = event["attendance_summary"] != event["attendance_body"]
        assert ("Disputed" in details.text) == disputed
    assert package.cite(event) in page.one("p", class_="lede").text
    if event["parent_event_id"]:
        assert f"/{DATABASE}/events/{event['parent_event_id']}" in details.hrefs()
    for child in package.rows["events"]:
        if child["parent_event_id"] == event_id:
            (item,) = [li for li in _section(page, "parts").all("li") if child["name"] in li.text]
            assert f"/{DATABASE}/events/{child['event_id']}" in item.hrefs()
            assert package.cite(child) in item.text

    programme = sorted(
        (p for p in package.rows["participations"] if p["event_id"] == event_id),
        key=lambda p: int(p["speaking_order"]),
    )
    if programme:
        table = page.one("table", id="programme-table")
        rows = table.one("tbody").all("tr")
        assert len(rows) == len(programme)
        for row, p in zip(rows, programme, strict=True):
            person = package.by_id["people"][p["person_id"]]["name"]
            assert row.text.startswith(f"{p['speaking_order']} {person} {p['role']}")
            assert package.cite(p) in row.text
            assert ("Disputed" in row.all("td")[2].text) == bool(p["note"])
            if p["affiliation_id"]:
                a = package.by_id["affiliations"][p["affiliation_id"]]
                assert a["role"] in row.text
                assert package.cite(a) in row.text
                assert ("Disputed" in row.all("td")[3].text) == (package.claims[a["claim_key"]] > 1)
        assert _section(page, "programme").all("svg", role="img")  # the timeline

    said = [s for s in package.rows["statements"] if s["event_id"] == event_id]
    if not said:
        assert "No statement is recorded" in _section(page, "thread").text
        return
    thread = page.one("div", id="thread-list")
    items = {
        li: re.search(r"statement ([a-z0-9-]+)$", li.child("p").all("a")[-1].text)
        for li in thread.all("li")
    }
    assert len(items) == len(said)
    place = {m.group(1): li for li, m in items.items() if m}
    for s in said:
        li = place[s["statement_id"]]
        assert s["text"] in li.child("p").text
        assert package.cite(s) in li.child("p").text
        parent = li.parent.parent if li.parent else None  # li > ol > li
        answered = s["responds_to_statement_id"]
        if answered and answered in place:
            assert parent is place[answered]
        else:
            assert parent is None or parent.tag != "li"
    if said:  # Topics by speaker: the table beside the dot matrix, cell by cell.
        matrix = page.one("table", id="topic-table")
        labels = [th.text for th in matrix.one("thead").all("th")][1:]
        counts: Counter[tuple[str, str]] = Counter()
        for s in said:
            for topic_id in package.topics_of[s["statement_id"]]:
                counts[(package.speaker(s), package.by_id["topics"][topic_id]["label"])] += 1
        assert set(labels) == {topic for _, topic in counts}
        for tr in matrix.one("tbody").all("tr"):
            speaker = tr.one("th").text
            cells = [td.text for td in tr.all("td")]
            assert cells == [str(counts[(speaker, t)] or "") for t in labels]
    _check_sources_listed(page, package)
    _check_raw_row(page, "events", event_id)


@pytest.mark.parametrize("topic_id", _ids("topics", "topic_id"))
def test_topic_page(client: SiteClient, package: Package, topic_id: str) -> None:
    page = _page(client, "topics", topic_id)
    topic = package.by_id["topics"][topic_id]
    assert topic["label"] in page.one("h1").text
    assert topic["definition"] in page.one("p", class_="lede").text
    section = _section(page, "statements")
    said = [
        s for s in package.rows["statements"] if topic_id in package.topics_of[s["statement_id"]]
    ]
    assert len(section.all("article")) == len(said)
    headings = [(h.tag, h.text) for h in section.all() if h.tag in ("h3", "h4")]
    for s in said:
        article = _article(page, s["statement_id"])
        _check_statement(article, package, s)
        # Under its event's heading, then its speaker's.
        before = [(h.tag, h.text) for h in section.all() if h.tag in ("h3", "h4") or h is article]
        index = next(i for i, h in enumerate(before) if h[0] == "article")
        speaker = next(h for h in reversed(before[:index]) if h[0] == "h4")
        event = next(h for h in reversed(before[:index]) if h[0] == "h3")
        assert speaker[1] == package.speaker(s)
        assert event[1] == package.by_id["events"][s["event_id"]]["name"]
    assert len({h for h in headings if h[0] == "h3"}) == len({s["event_id"] for s in said})


@pytest.mark.parametrize("statement_id", _ids("statements", "statement_id"))
def test_statement_page(client: SiteClient, package: Package, statement_id: str) -> None:
    page = _page(client, "statements", statement_id)
    statement = package.by_id["statements"][statement_id]
    assert statement["text"] in page.one("blockquote").text
    assert package.cite(statement) in page.one("p", class_="note").text
    details = page.one("dl", class_="coop100-details")
    assert package.speaker(statement) in details.text
    assert package.by_id["events"][statement["event_id"]]["name"] in details.text
    for topic_id in package.topics_of[statement_id]:
        assert package.by_id["topics"][topic_id]["label"] in details.text
    if statement["responds_to_statement_id"]:
        answered = package.by_id["statements"][statement["responds_to_statement_id"]]
        assert answered["text"] in details.text
    answers = [
        s for s in package.rows["statements"] if s["responds_to_statement_id"] == statement_id
    ]
    for s in answers:
        assert s["text"] in details.text
    # The thread: up to its first statement, then everything under it.
    root = statement
    while root["responds_to_statement_id"]:
        root = package.by_id["statements"][root["responds_to_statement_id"]]
    members, frontier = {root["statement_id"]}, [root["statement_id"]]
    while frontier:
        found = [
            s["statement_id"]
            for s in package.rows["statements"]
            if s["responds_to_statement_id"] in frontier
        ]
        members.update(found)
        frontier = found
    section = _section(page, "thread")
    if len(members) > 1:
        shown = {
            m.group(1)
            for li in section.all("li")
            if (m := re.search(r"statement ([a-z0-9-]+)$", li.child("p").all("a")[-1].text))
        }
        assert shown == members
        assert section.one("li", class_="current").child("p").text.endswith(statement_id)
    else:
        assert "stands alone" in section.text
    _check_raw_row(page, "statements", statement_id)


def test_disputed_facts_are_marked_where_they_are_about(
    client: SiteClient, package: Package
) -> None:
    """Every row of the canned query disputed_facts shows as disputed on its person's page."""
    facts = client.json(f"/{DATABASE}/disputed_facts.json?_shape=objects")["rows"]
    assert facts
    names = {p["name"]: p["person_id"] for p in package.rows["people"]}
    for fact in facts:
        page = _page(client, "people", names[fact["person"]])
        where = "names" if fact["kind"] == "name" else "roles"
        section = _section(page, where)
        assert "Disputed" in section.text
        assert fact["claim"].split(",")[0] in section.text
        assert f"[{fact['source']}" in section.text


def test_a_missing_row_is_still_a_404(client: SiteClient) -> None:
    assert client.get(f"/{DATABASE}/people/nobody").status_code == 404


# -- paging, on a synthetic archive with speakers of more than one page ------------


@pytest.fixture(scope="module")
def big_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import synth

    root = tmp_path_factory.mktemp("pages-archive")
    synth.write_archive(root, 800)
    build(root)
    site_client = SiteClient(datasette_app(build_site(root)))
    yield site_client, root
    site_client.loop.close()


def _walk(client: SiteClient, path: str) -> list[str]:
    """Follow a page's "Next statements" links and return every statement shown, in order."""
    shown: list[str] = []
    seen_pages = 0
    while path:
        response = client.get(path)
        assert response.status_code == 200
        page = parse(response.text)
        articles = _section(page, "statements").all("article")
        assert 0 < len(articles) <= PAGE_SIZE
        shown += [a.attrs["aria-label"].removeprefix("Statement ") for a in articles]
        nxt = [a for a in page.all("a") if a.attrs.get("rel") == "next"]
        path = unescape(nxt[0].attrs["href"] or "") if nxt else ""
        seen_pages += 1
        assert seen_pages < 100
    return shown


def test_a_busy_speakers_statements_come_a_page_at_a_time(big_client: Any) -> None:
    client, root = big_client
    rows = _read_package_csv(root, "statements")
    per_person = Counter(s["person_id"] for s in rows if s["person_id"])
    person, count = per_person.most_common(1)[0]
    assert count > PAGE_SIZE  # the archive makes this speaker's page a paged one
    shown = _walk(client, f"/{DATABASE}/people/{person}")
    assert shown == [s["statement_id"] for s in rows if s["person_id"] == person]


def test_a_topics_statements_come_a_page_at_a_time(big_client: Any) -> None:
    client, root = big_client
    topics = Counter(r["topic_id"] for r in _read_package_csv(root, "statement_topics"))
    topic, count = topics.most_common(1)[0]
    assert count > PAGE_SIZE
    shown = _walk(client, f"/{DATABASE}/topics/{topic}")
    expected = sorted(
        r["statement_id"]
        for r in _read_package_csv(root, "statement_topics")
        if r["topic_id"] == topic
    )
    assert sorted(shown) == expected
    assert len(shown) == len(set(shown))


def _read_package_csv(root: Path, table: str) -> list[dict[str, str]]:
    with (root / "build" / "csv" / f"{table}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


class _Recording:
    """A connection that notes every query and its parameters."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.queries: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.queries.append((sql, tuple(params)))
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _scans(conn: Any, sql: str, params: tuple[Any, ...]) -> list[str]:
    """The plan's full scans of a table (not of a subquery, a CTE or json_each)."""
    plan = [row[3] for row in conn.execute(f"explain query plan {sql}", params)]
    inner = {m.group(1) for d in plan if (m := re.match(r"(?:CO-ROUTINE|MATERIALIZE) (\w+)", d))}
    inner |= set(re.findall(r"recursive (\w+)\(", sql))
    return [
        d
        for d in plan
        if (m := re.match(r"SCAN (\w+)", d))
        # sources: the few documents the package rests on, listed whole on every page
        and m.group(1) not in inner | {"json_each", "sources", "CONSTANT"}
    ]


def test_every_page_query_follows_an_index(big_client: Any) -> None:
    import sqlite3

    from coop100.site.pages import LINKED, read_page

    _, root = big_client
    conn = sqlite3.connect(f"file:{root / 'build' / 'coop100.db'}?immutable=1", uri=True)
    statements = _read_package_csv(root, "statements")
    busiest = Counter(s["person_id"] for s in statements if s["person_id"]).most_common(1)[0][0]
    answered = next(s for s in statements if s["responds_to_statement_id"])

    class Request:
        def __init__(self, after: str = "") -> None:
            self.args = {"statements_after": after} if after else {}

    cases = [
        ("people", busiest, Request()),
        ("people", busiest, Request(statements[-1]["statement_id"])),
        ("organisations", "ilo", Request()),
        ("events", answered["event_id"], Request()),
        ("events", "ilo-coop-100", Request()),
        ("topics", "cooperatives", Request()),
        ("topics", "cooperatives", Request("event-1")),
        ("statements", answered["statement_id"], Request()),
    ]
    prefixes = {table: f"/{DATABASE}/{table}" for table in LINKED}
    for table, key, request in cases:
        recording = _Recording(conn)
        read_page(recording, table, key, request, 1000, prefixes)  # type: ignore[arg-type]
        assert recording.queries
        for sql, params in recording.queries:
            assert _scans(conn, sql, params) == [], (table, sql)
    conn.close()


def test_the_page_hooks_are_registered_from_the_plugin_module(client: SiteClient) -> None:
    """pluggy registers the hookimpls it finds as attributes of coop100.site.plugin."""
    from datasette.plugins import pm

    from coop100.site import pages

    for hook, function in (
        ("extra_template_vars", pages.page_template_vars),
        ("extra_css_urls", pages.page_css_urls),
        ("register_routes", pages.page_routes),
    ):
        assert function in [impl.function for impl in getattr(pm.hook, hook).get_hookimpls()]
    response = client.get(pages.CSS_URL)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
