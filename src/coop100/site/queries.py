"""Canned queries: the questions a newcomer asks first, answered in SQL."""

from __future__ import annotations

from typing import Any

from coop100.site.settings import DATABASE

_BY_TOPIC = (
    "Each topic with the statements that touch it, who made them and the "
    "organisation they spoke for. A statement appears once per topic. Leave "
    "topic empty for every topic, or give one topic's topic_id or label "
    "(decent-work, or Decent work) from the {topics}."
)
CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "speakers": {
        "title": "Who spoke, and in what capacity",
        "description": (
            "Everyone who took part in each event, in speaking order, with the job title "
            "and organisation the package prefers for them (the organiser's own wording)."
        ),
        # CROSS JOIN: events in date order first, so rows stream from the index.
        "sql": """
select
  e.name as event,
  pa.speaking_order,
  p.name as person,
  pa.role,
  a.role as title,
  o.name as organisation
from events e
cross join participations pa on pa.event_id = e.event_id
join people p on p.person_id = pa.person_id
left join affiliations a on a.affiliation_id = pa.affiliation_id
left join organisations o on o.organisation_id = a.organisation_id
order by e.start_date, e.event_id, pa.speaking_order
""",
    },
    "statements_by_topic": {
        "title": "Statements by topic",
        "description": _BY_TOPIC.format(topics="topics table"),
        "description_html": _BY_TOPIC.format(
            topics=f'<a href="/{DATABASE}/topics">topics table</a>'
        ),
        "params": ["topic"],
        # The speaker and organisation as statements_detailed gives them, from the
        # tables: CROSS JOIN fixes the loop order (topics, then events by date, then
        # their statements) so that at a million statements rows come in index order
        # and only one event's statements are sorted at a time.
        "sql": """
select
  t.label as topic,
  s.statement_id,
  coalesce(p.name, so.name) as speaker,
  coalesce(ao.name, so.name) as organisation,
  s.type,
  s.text
from topics t
cross join events e
cross join statements s on s.event_id = e.event_id
cross join statement_topics st on st.statement_id = s.statement_id and st.topic_id = t.topic_id
left join people p on p.person_id = s.person_id
left join organisations so on so.organisation_id = s.organisation_id
left join participations pa on pa.person_id = s.person_id and pa.event_id = s.event_id
left join affiliations a on a.affiliation_id = pa.affiliation_id
left join organisations ao on ao.organisation_id = a.organisation_id
where :topic = '' or t.topic_id = :topic or t.label = :topic collate nocase
order by t.label, t.topic_id, e.start_date, e.event_id,
  pa.speaking_order is null, pa.speaking_order, s.statement_id
""",
    },
    "organisation_tree": {
        "title": "The organisation tree",
        "description": (
            "Every organisation under the one it is part of, with its full path from "
            "the top (for example: organisation, department, unit)."
        ),
        "sql": """
with recursive tree(organisation_id, name, type, depth, path) as (
  select organisation_id, name, type, 0, name
  from organisations
  where parent_organisation_id is null
  union all
  select o.organisation_id, o.name, o.type, tree.depth + 1, tree.path || ' > ' || o.name
  from organisations o
  join tree on o.parent_organisation_id = tree.organisation_id
)
select path, depth, name, type, organisation_id
from tree
order by path
""",
    },
    "disputed_facts": {
        "title": "Disputed facts, side by side",
        "description": (
            "Every fact the sources disagree on: rival affiliation claims (rows sharing a "
            "claim_key) and people whose name the sources spell differently, each claim "
            "with its source and whether the package prefers it."
        ),
        # No ORDER BY over the union: SQLite would sort both halves whole before
        # returning a row. Each half is read in its key's index order ('name-of-'
        # || person_id sorts as person_id does), and UNION ALL returns the first
        # half, the affiliations, before the second, as 'affiliation' < 'name'.
        "sql": """
select * from (
  select
    'affiliation' as kind,
    a.claim_key as fact,
    p.name as person,
    trim(coalesce(a.role, '') || coalesce(', ' || o.name, ''), ', ') as claim,
    a.preferred,
    s.label as source,
    s.url as source_url,
    a.note
  from affiliations a
  join people p on p.person_id = a.person_id
  left join organisations o on o.organisation_id = a.organisation_id
  join sources s on s.source_id = a.source_id
  where exists (
    select 1 from affiliations rival
    where rival.claim_key = a.claim_key and rival.affiliation_id <> a.affiliation_id
  )
  order by a.claim_key, a.preferred desc, s.label
)
union all
select * from (
  select
    'name',
    'name-of-' || pn.person_id,
    p.name,
    pn.name,
    pn.preferred,
    s.label,
    s.url,
    null
  from person_names pn
  join people p on p.person_id = pn.person_id
  join sources s on s.source_id = pn.source_id
  where exists (
    select 1 from person_names other
    where other.person_id = pn.person_id and other.name <> pn.name
  )
  order by pn.person_id, pn.preferred desc, s.label
)
""",
    },
    "speaking_order": {
        "title": "Speaking order of an event",
        "description": (
            "Who spoke when at an event (give its id or name; empty: every event), in the "
            "order the participation's source lists them, with how many statements the "
            "package records for each."
        ),
        "sql": """
select
  e.name as event,
  pa.speaking_order,
  p.name as person,
  pa.role,
  (
    select count(*) from statements s
    where s.person_id = pa.person_id and s.event_id = pa.event_id
  ) as statements,
  pa.note
from events e
cross join participations pa on pa.event_id = e.event_id
join people p on p.person_id = pa.person_id
where :event = '' or e.event_id = :event or e.name = :event collate nocase
order by e.start_date, e.event_id, pa.speaking_order is null, pa.speaking_order,
  pa.participation_id
""",
    },
}
