"""Row pages that read as pages: a person, an organisation, an event, a topic, a statement.

Datasette renders a row page with templates/row-<database>-<table>.html when that
file exists (datasette.views.row); the extra_template_vars hook below gives those
templates the page's facts. Every page is read in one trip to a database thread,
under Datasette's time limit, with queries that each follow an index (a key, a
foreign key, or the statements' order), so a page costs about the same at a
million statements as at sixteen; long lists are paged or cut with a link to
the table that holds them all.

A fact is disputed where the package's canned query `disputed_facts` says so:
an affiliation whose claim_key other rows share, a name the sources spell in
more than one way. Participation notes say where the sources disagree.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from datasette import hookimpl
from datasette.utils import escape_sqlite, sqlite_timelimit, tilde_encode, urlsafe_components
from markupsafe import Markup, escape

from coop100.site import settings, svg
from coop100.site.landing import stylesheet_route

# Statements a person's or a topic's page shows at a time; `?statements_after=`
# (a statement_id) pages through the rest.
PAGE_SIZE = 50
# Rows of any other list a page shows before it links to the table holding them all.
LIST_LIMIT = 50
# Statements of one event, or of one thread, drawn and listed in full up to this.
THREAD_LIMIT = 200
CURSOR_ARG = "statements_after"

CSS_URL = "/-/coop100-pages.css"

Row = dict[str, Any]
LINKED = ("people", "organisations", "events", "topics", "statements", "sources")


@functools.lru_cache(maxsize=65536)
def _encode(key: str) -> str:
    return str(tilde_encode(key))


@dataclass
class _Reader:
    """Runs a page's queries on one connection and notes every source a shown row cites."""

    conn: sqlite3.Connection
    # Each page table's URL, from datasette.urls, so links need no per-row lookup.
    prefixes: dict[str, str] = field(default_factory=dict)
    # Every source by source_id, for the citations' labels; only those cited are listed.
    sources: dict[str, Row] = field(default_factory=dict)
    cited: set[str] = field(default_factory=set)

    def href(self, table: str, key: str | None) -> str | None:
        return f"{self.prefixes[table]}/{_encode(key)}" if key else None

    def statements(self, where: str, params: Iterable[Any] = ()) -> list[Row]:
        """Statements with their speaker and event, and the links to all three."""
        found = self.rows(_STATEMENT + where, params)
        for s in found:
            s["href"] = self.href("statements", s["statement_id"])
            s["event_href"] = self.href("events", s["event_id"])
            s["speaker_href"] = self.href("people", s["person_id"]) or self.href(
                "organisations", s["organisation_id"]
            )
        return found

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        cursor = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        found = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        self.cited.update(r["source_id"] for r in found if r.get("source_id"))
        return found

    def one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def value(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self.conn.execute(sql, tuple(params)).fetchone()[0]


# -- statements, shared by every page that lists them -----------------------------

# A statement with its speaker (a person, or an organisation for an editorial
# remark) and its event; `position` is its place in the package's order (each
# event's statements in the order its source reports them), which pages and cursors follow.
_STATEMENT = """
select
  s.rowid as position, s.statement_id, s.event_id, s.person_id, s.organisation_id,
  s.type, s.text, s.responds_to_statement_id, s.source_id, s.paragraph,
  coalesce(
    (select p.name from people p where p.person_id = s.person_id),
    (select o.name from organisations o where o.organisation_id = s.organisation_id)
  ) as speaker,
  (select e.name from events e where e.event_id = s.event_id) as event_name,
  (select e.start_date from events e where e.event_id = s.event_id) as event_date,
  (
    select pa.speaking_order from participations pa
    where pa.person_id = s.person_id and pa.event_id = s.event_id
  ) as speaking_order
from statements s
"""


def _json_ids(ids: Iterable[str]) -> str:
    return json.dumps(sorted(set(ids)))


# Statement lists are rendered here, by a plain Jinja environment on the same
# templates: Datasette's async one took most of a busy speaker's page time on them.
_JINJA = jinja2.Environment(
    loader=jinja2.PackageLoader("coop100.site", "templates"), autoescape=True
)


def _html(macro: str, *args: Any) -> Markup:
    """Call a macro of templates/_coop100_statements.html and return its HTML."""
    module = _JINJA.get_template("_coop100_statements.html").module
    return Markup(getattr(module, macro)(*args))


def _with_links(reader: _Reader, statements: list[Row]) -> list[Row]:
    """Add each statement's topics, what it answers and what answers it."""
    if not statements:
        return statements
    ids = _json_ids(s["statement_id"] for s in statements)
    topics: dict[str, list[Row]] = {}
    for row in reader.rows(
        "select st.statement_id, t.topic_id, t.label from statement_topics st "
        "join topics t on t.topic_id = st.topic_id "
        "where st.statement_id in (select value from json_each(?)) order by t.label",
        [ids],
    ):
        row["href"] = reader.href("topics", row["topic_id"])
        topics.setdefault(row["statement_id"], []).append(row)
    answered = _json_ids(
        s["responds_to_statement_id"] for s in statements if s["responds_to_statement_id"]
    )
    targets = {
        r["statement_id"]: r
        for r in reader.statements(
            "where s.statement_id in (select value from json_each(?))", [answered]
        )
    }
    responses: dict[str, list[Row]] = {}
    for row in reader.statements(
        "where s.responds_to_statement_id in (select value from json_each(?)) order by s.rowid",
        [ids],
    ):
        responses.setdefault(row["responds_to_statement_id"], []).append(row)
    for s in statements:
        s["topics"] = topics.get(s["statement_id"], [])
        s["responds_to"] = targets.get(s["responds_to_statement_id"] or "")
        s["responses"] = responses.get(s["statement_id"], [])
    return statements


def _count(reader: _Reader, table: str, column: str, value: str) -> int:
    """Count table's rows where column = value, from the stored facet groups if there.

    coop100.load.facets stores the size of every group of 10,000 rows or more; counting
    one live (a topic's 140,000 statements at a million) takes tens of milliseconds.
    """
    try:
        found = reader.conn.execute(
            f"select rows from [{settings.FACET_GROUPS_TABLE}] "
            "where table_name = ? and filter_column = ? and filter_value = ?",
            [table, column, value],
        ).fetchone()
    except sqlite3.OperationalError:  # a database loaded without the stored facets
        found = None
    if found:
        return int(found[0])
    return int(reader.value(f"select count(*) from [{table}] where [{column}] = ?", [value]))


def _cursor(request: Any) -> str | None:
    after = request.args.get(CURSOR_ARG)
    return after if after else None


def _paged(rows: list[Row], key: str) -> tuple[list[Row], str | None]:
    """Cut one look-ahead row off a page and return the cursor of the next page."""
    if len(rows) > PAGE_SIZE:
        return rows[:PAGE_SIZE], str(rows[PAGE_SIZE - 1][key])
    return rows, None


# -- the pages ----------------------------------------------------------------------


def person_page(reader: _Reader, person_id: str, request: Any) -> Row:
    """A person: names, role claims side by side, events, statements (paged)."""
    person = reader.one("select * from people where person_id = ?", [person_id])
    names = reader.rows(
        "select pn.*, (select s.label from sources s where s.source_id = pn.source_id) as label "
        "from person_names pn where pn.person_id = ? order by pn.preferred desc, label",
        [person_id],
    )
    affiliations = reader.rows(
        "select a.*, o.name as organisation_name, "
        "(select s.label from sources s where s.source_id = a.source_id) as label "
        "from affiliations a left join organisations o on o.organisation_id = a.organisation_id "
        "where a.person_id = ? order by a.claim_key, a.preferred desc, label",
        [person_id],
    )
    # The page's events first, then their figures: counting for all of a busy
    # speaker's thousand events would read millions of index entries.
    participations = reader.rows(
        "select pa.*, "
        "(select count(*) from participations other where other.event_id = pa.event_id) "
        "as participants, "
        "(select count(*) from statements s where s.event_id = pa.event_id "
        "and +s.person_id = pa.person_id) as statements, "
        "a.role as capacity, a.organisation_id as capacity_organisation_id, "
        "(select o.name from organisations o where o.organisation_id = a.organisation_id) "
        "as capacity_organisation "
        "from (select pa.*, e.name as event_name, e.start_date, e.type as event_type "
        "from participations pa join events e on e.event_id = pa.event_id "
        "where pa.person_id = ? order by e.start_date, e.event_id limit ?) pa "
        "left join affiliations a on a.affiliation_id = pa.affiliation_id "
        "order by pa.start_date, pa.event_id",
        [person_id, LIST_LIMIT + 1],
    )
    total_events = reader.value(
        "select count(*) from participations where person_id = ?", [person_id]
    )
    statements, next_cursor = _person_statements(reader, person_id, _cursor(request))
    total = _count(reader, "statements", "person_id", person_id)
    topic_counts = reader.rows(
        "select t.topic_id, t.label, count(*) as n from statements s "
        "join statement_topics st on st.statement_id = s.statement_id "
        "join topics t on t.topic_id = st.topic_id "
        "where s.person_id = ? group by t.topic_id order by n desc, t.label",
        [person_id],
    )
    name = person["name"] if person else person_id
    return {
        "kind": "person",
        "row": person,
        "names": names,
        "spellings": len({n["name"] for n in names}),
        "claims": _claims(affiliations),
        "participations": participations[:LIST_LIMIT],
        "participations_total": total_events,
        "statements": statements,
        "statements_html": _html(
            "statements", reader.sources, _with_links(reader, statements), False, True
        ),
        "statements_total": total,
        "next_cursor": next_cursor,
        "cursor": _cursor(request),
        "topic_counts": topic_counts,
        "topics_svg": svg.bars(
            f"Topics of {name}'s statements",
            [(t["label"], t["n"]) for t in topic_counts],
            unit="statements",
        ),
    }


def _person_statements(
    reader: _Reader, person_id: str, after: str | None
) -> tuple[list[Row], str | None]:
    # statements(person_id) holds each row's rowid: the page is one index range.
    rows = reader.statements(
        "where s.person_id = ? and s.rowid > coalesce("
        "(select rowid from statements where statement_id = ?), 0) "
        "order by s.rowid limit ?",
        [person_id, after, PAGE_SIZE + 1],
    )
    return _paged(rows, "statement_id")


def _claims(affiliations: list[Row]) -> list[Row]:
    """Group affiliation rows by the fact they claim; two or more rows dispute it."""
    claims: dict[str, Row] = {}
    for a in affiliations:
        claim = claims.setdefault(a["claim_key"], {"claim_key": a["claim_key"], "rows": []})
        claim["rows"].append(a)
    for claim in claims.values():
        claim["disputed"] = len(claim["rows"]) > 1
        claim["preferred"] = next((r for r in claim["rows"] if r["preferred"]), None)
    return list(claims.values())


def organisation_page(reader: _Reader, organisation_id: str, request: Any) -> Row:
    """An organisation: its place in the tree, its people and their roles."""
    organisation = reader.one(
        "select * from organisations where organisation_id = ?", [organisation_id]
    )
    # Up the tree to the top (the depth bound stops a cycle the validator would refuse).
    ancestors = reader.rows(
        "with recursive up(organisation_id, depth) as ("
        " select parent_organisation_id, 1 from organisations where organisation_id = ?"
        " union all select o.parent_organisation_id, up.depth + 1 from organisations o"
        " join up on o.organisation_id = up.organisation_id where up.depth < 50)"
        " select o.organisation_id, o.name, o.type, up.depth from up"
        " join organisations o on o.organisation_id = up.organisation_id order by up.depth desc",
        [organisation_id],
    )
    children = reader.rows(
        "select organisation_id, name, type, source_id, paragraph, "
        "(select count(*) from organisations g where g.parent_organisation_id = c.organisation_id)"
        " as children from organisations c where parent_organisation_id = ? "
        "order by name, organisation_id limit ?",
        [organisation_id, LIST_LIMIT + 1],
    )
    children_total = reader.value(
        "select count(*) from organisations where parent_organisation_id = ?", [organisation_id]
    )
    affiliations = reader.rows(
        "select a.*, p.name as person_name, p.sort_name, "
        "(select s.label from sources s where s.source_id = a.source_id) as label "
        "from affiliations a join people p on p.person_id = a.person_id "
        "where a.organisation_id = ? order by p.sort_name, a.person_id, a.claim_key, "
        "a.preferred desc, label limit ?",
        [organisation_id, LIST_LIMIT + 1],
    )
    affiliations_total = reader.value(
        "select count(*) from affiliations where organisation_id = ?", [organisation_id]
    )
    # Rivals of a claim held elsewhere (another organisation) still dispute it.
    keys = _json_ids(a["claim_key"] for a in affiliations)
    rival_counts = {
        r["claim_key"]: r["n"]
        for r in reader.rows(
            "select claim_key, count(*) as n from affiliations "
            "where claim_key in (select value from json_each(?)) group by claim_key",
            [keys],
        )
    }
    people: dict[str, Row] = {}
    for a in affiliations[:LIST_LIMIT]:
        person = people.setdefault(
            a["person_id"], {"person_id": a["person_id"], "name": a["person_name"], "rows": []}
        )
        a["disputed"] = rival_counts.get(a["claim_key"], 1) > 1
        person["rows"].append(a)
    sources = reader.rows(
        "select source_id as published_id, label, title from sources "
        "where publisher_organisation_id = ? "
        "order by label",
        [organisation_id],
    )
    events = reader.rows(
        "select event_id, name, start_date, type, source_id, paragraph from events "
        "where organiser_organisation_id = ? order by start_date, event_id limit ?",
        [organisation_id, LIST_LIMIT + 1],
    )
    statements = reader.statements(
        "where s.organisation_id = ? order by s.rowid limit ?",
        [organisation_id, LIST_LIMIT + 1],
    )
    tree = [
        {"name": a["name"], "depth": i, "href_id": a["organisation_id"], "current": False}
        for i, a in enumerate(ancestors)
    ]
    depth = len(ancestors)
    name = organisation["name"] if organisation else organisation_id
    tree.append({"name": name, "depth": depth, "href_id": organisation_id, "current": True})
    tree += [
        {"name": c["name"], "depth": depth + 1, "href_id": c["organisation_id"], "current": False}
        for c in children[:LIST_LIMIT]
    ]
    if children_total > LIST_LIMIT:
        tree.append(
            {
                "name": f"and {children_total - LIST_LIMIT:,} more",
                "depth": depth + 1,
                "href_id": None,
                "current": False,
            }
        )
    return {
        "kind": "organisation",
        "row": organisation,
        "ancestors": ancestors,
        "children": children[:LIST_LIMIT],
        "children_total": children_total,
        "people": list(people.values()),
        "affiliations_total": affiliations_total,
        "affiliations_shown": min(len(affiliations), LIST_LIMIT),
        "published": sources,
        "events": events[:LIST_LIMIT],
        "statements_html": _html(
            "statements", reader.sources, _with_links(reader, statements[:LIST_LIMIT]), False, True
        ),
        "tree_svg": svg.tree(f"Where {name} sits in the organisation tree", tree),
    }


def event_page(reader: _Reader, event_id: str, request: Any) -> Row:
    """An event: details, programme in speaking order, statements as a thread, relatives."""
    event = reader.one(
        "select e.*, (select o.name from organisations o "
        "where o.organisation_id = e.organiser_organisation_id) as organiser "
        "from events e where e.event_id = ?",
        [event_id],
    )
    assert event is not None
    parent = None
    siblings: list[Row] = []
    siblings_total = 0
    if event["parent_event_id"]:
        parent = reader.one(
            "select event_id, name, type, start_date from events where event_id = ?",
            [event["parent_event_id"]],
        )
        siblings = reader.rows(
            "select event_id, name, type, start_date, source_id, paragraph from events "
            "where parent_event_id = ? and event_id <> ? order by start_date, event_id limit ?",
            [event["parent_event_id"], event_id, LIST_LIMIT + 1],
        )
        siblings_total = reader.value(
            "select count(*) - 1 from events where parent_event_id = ?", [event["parent_event_id"]]
        )
    parts = reader.rows(
        "select e.event_id, e.name, e.type, e.start_date, e.source_id, e.paragraph "
        "from events e "
        "where e.parent_event_id = ? order by e.start_date, e.event_id limit ?",
        [event_id, LIST_LIMIT + 1],
    )
    parts_total = reader.value("select count(*) from events where parent_event_id = ?", [event_id])
    programme = reader.rows(
        "select pa.*, p.name as person_name, a.role as capacity, "
        "a.organisation_id as capacity_organisation_id, a.source_id as capacity_source_id, "
        "a.paragraph as capacity_paragraph, "
        "(select count(*) from affiliations r where r.claim_key = a.claim_key) > 1 "
        "as capacity_disputed, "
        "(select o.name from organisations o where o.organisation_id = a.organisation_id) "
        "as capacity_organisation, "
        "(select count(*) from statements s where s.event_id = pa.event_id "
        "and +s.person_id = pa.person_id) as statements "
        "from participations pa join people p on p.person_id = pa.person_id "
        "left join affiliations a on a.affiliation_id = pa.affiliation_id "
        "where pa.event_id = ? "
        "order by pa.speaking_order is null, pa.speaking_order, pa.participation_id",
        [event_id],
    )
    reader.cited.update(r["capacity_source_id"] for r in programme if r["capacity_source_id"])
    statements = reader.statements(
        "where s.event_id = ? order by s.rowid limit ?", [event_id, THREAD_LIMIT + 1]
    )
    statements_total = reader.value(
        "select count(*) from statements where event_id = ?", [event_id]
    )
    statements = _with_links(reader, statements[:THREAD_LIMIT])
    speakers: list[tuple[str, str]] = []
    for s in statements:
        if (s["speaker"], s["person_id"] or s["organisation_id"]) not in speakers:
            speakers.append((s["speaker"], s["person_id"] or s["organisation_id"]))
    topic_labels = sorted({t["label"] for s in statements for t in s["topics"]})
    matrix = {
        (speaker, label): sum(
            1
            for s in statements
            if s["speaker"] == speaker and any(t["label"] == label for t in s["topics"])
        )
        for speaker, _ in speakers
        for label in topic_labels
    }
    name = event["name"]
    return {
        "kind": "event",
        "row": event,
        "attendance_disputed": (
            event["attendance_summary"] is not None
            and event["attendance_body"] is not None
            and event["attendance_summary"] != event["attendance_body"]
        ),
        "parent": parent,
        "siblings": siblings[:LIST_LIMIT],
        "siblings_total": siblings_total,
        "parts": parts[:LIST_LIMIT],
        "parts_total": parts_total,
        "programme": programme,
        "statements": statements,
        "statements_total": statements_total,
        "thread_html": _html("thread", reader.sources, _thread(statements)),
        "speakers": [s for s, _ in speakers],
        "topic_labels": topic_labels,
        "matrix": matrix,
        "timeline_svg": svg.timeline(
            f"Programme of {name} in speaking order",
            [
                (p["speaking_order"], p["person_name"], p["role"], p["statements"])
                for p in programme
            ],
        ),
        "thread_svg": svg.thread(f"Who answered whom at {name}", _graph(statements)),
        "matrix_svg": svg.matrix(
            f"Topics each speaker touched at {name}",
            [s for s, _ in speakers],
            topic_labels,
            matrix,
        ),
    }


def _thread(statements: list[Row]) -> list[Row]:
    """Nest statements under the statement they answer; others are roots, in order."""
    by_id: dict[str, Row] = {
        s["statement_id"]: {"statement": s, "children": []} for s in statements
    }
    roots: list[Row] = []
    for s in statements:
        node = by_id[s["statement_id"]]
        parent = by_id.get(s["responds_to_statement_id"] or "")
        (parent["children"] if parent else roots).append(node)
    return roots


def _graph(statements: list[Row], current: str | None = None) -> list[svg.Node]:
    index = {s["statement_id"]: i for i, s in enumerate(statements)}
    return [
        svg.Node(
            label=f"{s['speaker']}: {s['text']}",
            answers=index.get(s["responds_to_statement_id"] or ""),
            current=s["statement_id"] == current,
        )
        for s in statements
    ]


def topic_page(reader: _Reader, topic_id: str, request: Any) -> Row:
    """A topic: its statements by event and speaker, a page at a time."""
    topic = reader.one("select * from topics where topic_id = ?", [topic_id])
    after = _cursor(request)
    # statement_topics' order index (topic_id, statement_id) gives the page in key order.
    rows = reader.statements(
        "join statement_topics st on st.statement_id = s.statement_id "
        "where st.topic_id = ? and st.statement_id > coalesce(?, '') "
        "order by st.statement_id limit ?",
        [topic_id, after, PAGE_SIZE + 1],
    )
    statements, next_cursor = _paged(rows, "statement_id")
    total = _count(reader, "statement_topics", "topic_id", topic_id)
    statements = _with_links(reader, statements)
    groups: dict[tuple[Any, ...], Row] = {}
    for s in sorted(
        statements,
        key=lambda s: (
            s["event_date"],
            s["event_id"],
            s["speaking_order"] is None,
            s["speaking_order"] or 0,
            s["position"],
        ),
    ):
        group = groups.setdefault(
            (s["event_date"], s["event_id"]),
            {"event_href": s["event_href"], "event_name": s["event_name"], "speakers": {}},
        )
        group["speakers"].setdefault(s["speaker"], []).append(s)
    counts: dict[str, int] = {}
    for s in statements:
        counts[s["speaker"]] = counts.get(s["speaker"], 0) + 1
    label = topic["label"] if topic else topic_id
    return {
        "kind": "topic",
        "row": topic,
        "groups_html": _html("by_event", reader.sources, list(groups.values())),
        "statements": statements,
        "statements_total": total,
        "next_cursor": next_cursor,
        "cursor": after,
        "speaker_counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        "speakers_svg": svg.bars(
            f"Who spoke about {label}" + (" on this page" if total > PAGE_SIZE else ""),
            sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
            unit="statements",
        ),
    }


def statement_page(reader: _Reader, statement_id: str, request: Any) -> Row:
    """A statement: what was said, by whom, where, on what, and the thread it is in."""
    found = reader.statements("where s.statement_id = ?", [statement_id])
    statement = _with_links(reader, found)[0]
    capacity = reader.one(
        "select a.*, o.name as organisation_name, "
        "(select count(*) from affiliations r where r.claim_key = a.claim_key) > 1 as disputed "
        "from participations pa join affiliations a on a.affiliation_id = pa.affiliation_id "
        "left join organisations o on o.organisation_id = a.organisation_id "
        "where pa.person_id = ? and pa.event_id = ?",
        [statement["person_id"], statement["event_id"]],
    )
    # Up to the statement that starts the thread, then every answer under it.
    (root,) = reader.conn.execute(
        "with recursive up(statement_id, parent, depth) as ("
        " select statement_id, responds_to_statement_id, 0 from statements where statement_id = ?"
        " union all select s.statement_id, s.responds_to_statement_id, up.depth + 1"
        " from statements s join up on s.statement_id = up.parent where up.depth < ?)"
        " select statement_id from up order by depth desc limit 1",
        [statement_id, THREAD_LIMIT],
    ).fetchone()
    members = reader.rows(
        "with recursive down(statement_id, depth) as (select ?, 0"
        " union all select s.statement_id, down.depth + 1 from statements s"
        " join down on s.responds_to_statement_id = down.statement_id where down.depth < ?)"
        " select statement_id from down limit ?",
        [root, THREAD_LIMIT, THREAD_LIMIT + 1],
    )
    thread = reader.statements(
        "where s.statement_id in (select value from json_each(?)) order by s.rowid",
        [_json_ids(m["statement_id"] for m in members[:THREAD_LIMIT])],
    )
    return {
        "kind": "statement",
        "row": statement,
        "statement": statement,
        "capacity": capacity,
        "thread_html": (
            _html("thread", reader.sources, _thread(thread), statement_id)
            if len(thread) > 1
            else None
        ),
        "thread_cut": len(members) > THREAD_LIMIT,
        "thread_svg": (
            svg.thread("The thread this statement is part of", _graph(thread, statement_id))
            if len(thread) > 1
            else None
        ),
    }


PAGES: dict[str, Callable[[_Reader, str, Any], Row]] = {
    "people": person_page,
    "organisations": organisation_page,
    "events": event_page,
    "topics": topic_page,
    "statements": statement_page,
}


def read_page(
    conn: sqlite3.Connection,
    table: str,
    key: str,
    request: Any,
    time_limit_ms: int,
    prefixes: dict[str, str],
) -> Row:
    """Read one page's facts on conn, within time_limit_ms, with the sources it cites.

    prefixes: the URL of each table in LINKED, which the page's links start with.
    """
    reader = _Reader(conn, prefixes)
    with sqlite_timelimit(conn, time_limit_ms):
        cursor = conn.execute("select * from sources order by label")
        names = [d[0] for d in cursor.description]
        sources = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        reader.sources = {source["source_id"]: source for source in sources}
        page = PAGES[table](reader, key, request)
    page["sources"] = reader.sources
    page["cited"] = [s for s in reader.sources.values() if s["source_id"] in reader.cited]
    page["prefixes"] = prefixes
    return page


@hookimpl(specname="extra_template_vars")  # type: ignore[untyped-decorator]
def page_template_vars(
    template: str, database: str, table: str, view_name: str, request: Any, datasette: Any
) -> Any:
    """Give a row page of the five page tables its facts, as `page`."""
    if view_name != "row" or database != settings.DATABASE or table not in PAGES:
        return None

    async def facts() -> dict[str, Any]:
        key = urlsafe_components(request.url_vars["pks"])[0]
        db = datasette.get_database(database)
        limit = datasette.setting("sql_time_limit_ms")
        prefixes = {t: datasette.urls.table(database, t) for t in LINKED}
        page = await db.execute_fn(
            lambda conn: read_page(conn, table, key, request, limit, prefixes)
        )
        return {"page": page}

    return facts


@hookimpl(specname="extra_css_urls")  # type: ignore[untyped-decorator]
def page_css_urls(view_name: str, database: str, table: str) -> list[str]:
    """Add the pages' stylesheet to the row pages that have a page template."""
    if view_name == "row" and database == settings.DATABASE and table in PAGES:
        return [CSS_URL]
    return []


@hookimpl(specname="register_routes")  # type: ignore[untyped-decorator]
def page_routes() -> list[tuple[str, Any]]:
    """Serve static/pages.css from the site itself (no inline styles, for a strict CSP)."""
    return [stylesheet_route(CSS_URL, "pages.css")]


# -- foreign keys on Datasette's own row pages -------------------------------------

_FOREIGN_KEYS: dict[tuple[str, str], list[dict[str, str]]] = {}
_LABEL_COLUMNS: dict[tuple[str, str], str | None] = {}


@hookimpl(specname="render_cell")  # type: ignore[untyped-decorator]
def label_foreign_keys(
    value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    """Show a foreign key on a row page as a link labelled with the row it points to.

    Table pages already expand labels (the value then arrives as a dict); row
    pages in Datasette 0.65 show the bare id, which this fills in the same way.
    """
    if database != settings.DATABASE or table is None or value in (None, ""):
        return None
    if isinstance(value, dict):
        return None
    known = _FOREIGN_KEYS.get((database, table))
    if known is not None and all(f["column"] != column for f in known):
        # Most cells: no coroutine, no query (a 1M-statement table page has ~400 cells).
        return None

    async def link() -> Markup | None:
        db = datasette.get_database(database)
        # The database is immutable, so its keys and label columns are read once.
        fks = _FOREIGN_KEYS.get((database, table))
        if fks is None:
            fks = _FOREIGN_KEYS[(database, table)] = await db.foreign_keys_for_table(table)
        fk = next((f for f in fks if f["column"] == column), None)
        if fk is None:
            return None
        other = fk["other_table"]
        if (database, other) not in _LABEL_COLUMNS:
            _LABEL_COLUMNS[(database, other)] = await db.label_column_for_table(other)
        label_column = _LABEL_COLUMNS[(database, other)]
        label = None
        if label_column:
            result = await db.execute(
                f"select {escape_sqlite(label_column)} from {escape_sqlite(other)} "
                f"where {escape_sqlite(fk['other_column'])} = ?",
                [value],
            )
            row = result.first()
            label = row[0] if row else None
        href = datasette.urls.row(database, other, tilde_encode(str(value)))
        if label is None or label == value:
            return Markup(f'<a href="{escape(href)}">{escape(value)}</a>')
        return Markup(f'<a href="{escape(href)}">{escape(label)}</a>&nbsp;<em>{escape(value)}</em>')

    return link
