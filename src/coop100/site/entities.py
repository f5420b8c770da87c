"""schema.org JSON-LD on the pages of a person, an organisation and an event.

A `Person`, an `Organization` or an `Event` whose `@id` is the page's own URL,
with `sameAs` the Wikidata entity where the records hold one (only ids a source
gives; never guessed), built from the facts the page already read
(coop100.site.pages), so it costs no query. Roles use schema.org's Role pattern
(an `OrganizationRole` or `PerformanceRole` standing between the two things it
joins, with `roleName` and dates), and only the preferred claims are stated:
where sources disagree, the page shows every claim, the JSON-LD the package's
choice. The landing page's events (coop100.site.jsonld) use the same ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datasette import hookimpl
from datasette.utils import tilde_encode
from markupsafe import Markup

from coop100.site import settings
from coop100.site.jsonld import SCHEMA_ORG, absolute, event_facts, script

WIKIDATA_ENTITY = "http://www.wikidata.org/entity/"

Row = dict[str, Any]


def _tidy(node: Row) -> Row:
    """The node without its empty properties."""
    return {k: v for k, v in node.items() if v not in (None, "", [])}


class _Ids:
    """The site-relative URL of each page, its JSON-LD @id."""

    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes

    def __call__(self, table: str, key: str) -> str:
        return f"{self.prefixes[table]}/{tilde_encode(key)}"

    def ref(self, kind: str, table: str, key: str | None, name: str | None) -> Row | None:
        """A short node naming another page's thing, or None without a key."""
        if not key:
            return None
        return _tidy({"@type": kind, "@id": self(table, key), "name": name})


def _head(kind: str, url: str) -> Row:
    """The start of a page's node: its type, and the page's URL as its @id."""
    return {"@context": SCHEMA_ORG, "@type": kind, "@id": url, "url": url}


def _same_as(row: Row) -> str | None:
    return f"{WIKIDATA_ENTITY}{row['wikidata_id']}" if row.get("wikidata_id") else None


def _role(kind: str, claim: Row, prop: str, node: Row | None) -> Row:
    """A Role standing for node in prop, with the claim's role and dates."""
    return _tidy(
        {
            "@type": kind,
            "roleName": claim["role"],
            "startDate": claim.get("start"),
            "endDate": claim.get("end"),
            prop: node,
        }
    )


def person_node(page: Row, ids: _Ids) -> Row:
    """The person, their preferred affiliations and the events they took part in."""
    person = page["row"]
    names = sorted({n["name"] for n in page["names"]} - {person["name"]})
    affiliations = []
    for claim in page["claims"]:
        chosen = claim["preferred"]
        if chosen is None:
            continue
        organisation = ids.ref(
            "Organization", "organisations", chosen["organisation_id"], chosen["organisation_name"]
        )
        if organisation is None:
            continue
        affiliations.append(_role("OrganizationRole", chosen, "affiliation", organisation))
    events = [
        _role(
            "PerformanceRole",
            p,
            "performerIn",
            _tidy(
                {
                    "@type": "Event",
                    "@id": ids("events", p["event_id"]),
                    "name": p["event_name"],
                    "startDate": p["start_date"],
                }
            ),
        )
        for p in page["participations"]
    ]
    url = ids("people", person["person_id"])
    return _tidy(
        {
            **_head("Person", url),
            "name": person["name"],
            "honorificPrefix": person["honorific"],
            "alternateName": names,
            "sameAs": _same_as(person),
            "affiliation": affiliations,
            "performerIn": events,
        }
    )


def organisation_node(page: Row, ids: _Ids) -> Row:
    """The organisation, where it sits, its people's preferred roles and its events."""
    org = page["row"]
    parent = page["ancestors"][-1] if page["ancestors"] else None
    members = []
    for person in page["people"]:
        for row in person["rows"]:
            if row["preferred"]:
                member = ids.ref("Person", "people", person["person_id"], person["name"])
                members.append(_role("OrganizationRole", row, "member", member))
    url = ids("organisations", org["organisation_id"])
    return _tidy(
        {
            **_head("Organization", url),
            "name": org["name"],
            "alternateName": [n for n in (org["short_name"], org["former_name"]) if n],
            "sameAs": _same_as(org),
            "foundingDate": org["founded"],
            "address": {"@type": "PostalAddress", "addressCountry": org["country"]}
            if org["country"]
            else None,
            "parentOrganization": ids.ref(
                "Organization",
                "organisations",
                parent and parent["organisation_id"],
                parent and parent["name"],
            ),
            "subOrganization": [
                ids.ref("Organization", "organisations", c["organisation_id"], c["name"])
                for c in page["children"]
            ],
            "member": members,
            "event": [ids.ref("Event", "events", e["event_id"], e["name"]) for e in page["events"]],
        }
    )


def event_node(page: Row, ids: _Ids) -> Row:
    """The event, its organiser, what it is part of and its programme."""
    event = page["row"]
    performers = []
    for p in page["programme"]:
        person = ids.ref("Person", "people", p["person_id"], p["person_name"])
        assert person is not None
        # The capacity they took part in: the preferred affiliation the row names.
        person = _tidy(
            {
                **person,
                "jobTitle": p["capacity"],
                "affiliation": ids.ref(
                    "Organization",
                    "organisations",
                    p["capacity_organisation_id"],
                    p["capacity_organisation"],
                ),
            }
        )
        performers.append(_role("PerformanceRole", p, "performer", person))
    url = ids("events", event["event_id"])
    return _tidy(
        {
            **_head("Event", url),
            **event_facts(event),
            "organizer": ids.ref(
                "Organization",
                "organisations",
                event["organiser_organisation_id"],
                event["organiser"],
            ),
            "superEvent": ids.ref(
                "Event",
                "events",
                event["parent_event_id"],
                page["parent"] and page["parent"]["name"],
            ),
            "subEvent": [
                ids.ref("Event", "events", e["event_id"], e["name"]) for e in page["parts"]
            ],
            "performer": performers,
        }
    )


NODES: dict[str, Callable[[Row, _Ids], Row]] = {
    "people": person_node,
    "organisations": organisation_node,
    "events": event_node,
}


@hookimpl(specname="extra_template_vars")  # type: ignore[untyped-decorator]
def entity_template_vars(
    view_name: str, database: str | None, request: Any, datasette: Any
) -> dict[str, Any]:
    """Give the row pages `coop100_entity_jsonld(table, page)`: the script element of
    the page's Person, Organization or Event ("" for the other tables)."""
    if view_name != "row" or database != settings.DATABASE or request is None:
        return {}
    # The package's canonical address, as the landing page's JSON-LD names the same
    # people, organisations and events (not the address this page was asked at).
    config = datasette.metadata().get("plugins", {}).get("coop100", {})
    base = config.get("site_url") or str(datasette.absolute_url(request, "/")).rstrip("/")

    def entity_jsonld(table: str, page: Row | None) -> Markup:
        build = NODES.get(table)
        if build is None or not page or not page.get("row"):
            return Markup("")
        return script(absolute(build(page, _Ids(page["prefixes"])), base))

    return {"coop100_entity_jsonld": entity_jsonld}
