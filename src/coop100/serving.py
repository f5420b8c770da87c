"""How each table and view is served: its pages' order, facets, full-text columns, views.

One declaration per table, read by the loader (coop100.load.database indexes each page's
order and facet columns, builds the full-text indexes and creates the views; the
facet counts are stored with it, coop100.load.facets) and by the site (coop100.site:
Datasette's metadata, the facet class, the SQL guard).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A suggested facet: a column's name, or Datasette's {"array": column} for a JSON array.
Facet = str | dict[str, str]


@dataclass(frozen=True)
class Serving:
    """How the pages of one table or view are served."""

    # The column its pages are sorted by; the database indexes that order.
    sort: str | None = None
    # The facets its pages suggest; each plain column is indexed, and counted in advance.
    facets: tuple[Facet, ...] = ()
    # The columns of its full-text index (porter stemming); none: no search box.
    search: tuple[str, ...] = ()


SERVING: dict[str, Serving] = {
    "sources": Serving(
        sort="label", facets=("kind",), search=("label", "title", "publisher", "note")
    ),
    "organisations": Serving(
        sort="name", facets=("type",), search=("name", "short_name", "former_name")
    ),
    "people": Serving(sort="sort_name", search=("name", "sort_name")),
    "person_names": Serving(sort="person_id", facets=("person_id", "preferred"), search=("name",)),
    "affiliations": Serving(
        sort="claim_key",
        facets=("person_id", "organisation_id", "preferred"),
        search=("role", "note"),
    ),
    "events": Serving(sort="start_date", search=("name", "occasion", "description")),
    "participations": Serving(sort="speaking_order", facets=("role",), search=("note",)),
    "statements": Serving(facets=("type", "person_id", "organisation_id"), search=("text",)),
    "topics": Serving(sort="label", search=("label", "definition")),
    "statement_topics": Serving(sort="topic_id", facets=("topic_id",)),
    # views
    "statements_detailed": Serving(facets=("type", "speaker", "organisation", {"array": "topics"})),
    "current_affiliations": Serving(sort="person", facets=("organisation",)),
}

# The first of these a table has is the label its foreign keys show.
LABEL_CANDIDATES = ("name", "label", "role")


def label_column(columns: list[str]) -> str | None:
    """Return the column that names a row of a table with these columns, if any."""
    return next((c for c in LABEL_CANDIDATES if c in columns), None)


# Derived from SERVING, for the code that asks one question of every table.
SORT: dict[str, str] = {name: s.sort for name, s in SERVING.items() if s.sort}
FACETS: dict[str, list[Facet]] = {name: list(s.facets) for name, s in SERVING.items() if s.facets}
FTS_COLUMNS: dict[str, tuple[str, ...]] = {
    name: s.search for name, s in SERVING.items() if s.search
}


def column_facets(name: str) -> list[str]:
    """Return the plain column facets (not array or date facets) of a table's pages."""
    return [facet for facet in FACETS.get(name, []) if isinstance(facet, str)]


@dataclass(frozen=True)
class View:
    """A convenience view: its SQL and, per column, a description or (table, column)."""

    name: str
    title: str
    description: str
    sql: str
    # The table the view shows one row for each of (or a subset of).
    base: str
    columns: dict[str, str | tuple[str, str]] = field(default_factory=dict)


# Each view reads one table and looks everything else up in scalar subqueries
# (a name, a speaking order), with no ORDER BY. So a page's count(*) reads that
# one table's index and a search folds into the query, instead of joining or
# sorting every row of a million statements (seconds, past the time limit). The
# rows are those the joins gave (checked on the package and at 1M): names follow
# unique keys, and each person has one participation per event. Were there two,
# the view would show one where a join would repeat the statement. The site
# orders views through metadata.
VIEWS: tuple[View, ...] = (
    View(
        name="statements_detailed",
        title="Statements with speaker and event",
        description=(
            "Every statement with the name of who said it, the organisation they spoke "
            "for (their preferred affiliation at the event), the event and its topics."
        ),
        sql="""
select
  s.statement_id,
  s.type,
  s.text,
  coalesce(
    (select p.name from people p where p.person_id = s.person_id),
    (select so.name from organisations so where so.organisation_id = s.organisation_id)
  ) as speaker,
  coalesce(
    (
      select ao.name
      from participations pa
      join affiliations a on a.affiliation_id = pa.affiliation_id
      join organisations ao on ao.organisation_id = a.organisation_id
      where pa.person_id = s.person_id and pa.event_id = s.event_id
    ),
    (select so.name from organisations so where so.organisation_id = s.organisation_id)
  ) as organisation,
  (select e.name from events e where e.event_id = s.event_id) as event,
  (
    select pa.speaking_order from participations pa
    where pa.person_id = s.person_id and pa.event_id = s.event_id
  ) as speaking_order,
  (
    select json_group_array(topic_id)
    from (select topic_id from statement_topics st
          where st.statement_id = s.statement_id order by topic_id)
  ) as topics,
  s.source_id,
  s.paragraph
from statements s
""",
        base="statements",
        columns={
            "statement_id": ("statements", "statement_id"),
            "type": ("statements", "type"),
            "text": ("statements", "text"),
            "speaker": "Who said it: the person's preferred name, or the organisation",
            "organisation": "The organisation the speaker spoke for at the event",
            "event": ("events", "name"),
            "speaking_order": ("participations", "speaking_order"),
            "topics": "The topics the statement touches (topic_id values, a JSON array)",
            "source_id": ("statements", "source_id"),
            "paragraph": ("statements", "paragraph"),
        },
    ),
    View(
        name="current_affiliations",
        title="Current affiliations",
        description=(
            "Each person's roles that were current at the time, preferred claims only, "
            "with the person's and organisation's names."
        ),
        sql="""
select
  a.affiliation_id,
  (select p.name from people p where p.person_id = a.person_id) as person,
  a.role,
  (select o.name from organisations o where o.organisation_id = a.organisation_id)
    as organisation,
  a.start,
  a.person_id,
  a.organisation_id,
  a.source_id
from affiliations a
where a.preferred = 1 and a.former = 0
""",
        base="affiliations",
        columns={
            "affiliation_id": ("affiliations", "affiliation_id"),
            "person": ("people", "name"),
            "role": ("affiliations", "role"),
            "organisation": ("organisations", "name"),
            "start": ("affiliations", "start"),
            "person_id": ("affiliations", "person_id"),
            "organisation_id": ("affiliations", "organisation_id"),
            "source_id": ("affiliations", "source_id"),
        },
    ),
)
