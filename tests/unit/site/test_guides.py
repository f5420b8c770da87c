"""What the site gives an analyst to read the data by: the codebook page, the diagram,
entity JSON-LD on the row pages (read back by extruct, as a crawler would) and the
loading snippets of each table page."""

from __future__ import annotations

import html
import re
from typing import Any

import extruct
import pytest

from coop100 import settings
from coop100.read.records import read_about
from coop100.rules.models import MODELS
from coop100.site.snippets import SNIPPETS
from tests.conftest import RECORDS
from tests.site_fixtures import DATABASE

# Entity JSON-LD names pages under the package's canonical address; the snippets
# use the address the page was asked at, so they load from whichever server shows them.
SITE = read_about(RECORDS).homepage.rstrip("/")
BASE = "http://localhost"


def _jsonld(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = extruct.extract(text, base_url=BASE + "/", syntaxes=["json-ld"])[
        "json-ld"
    ]
    return found


def _page(client: Any, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.text[:300])
    return str(response.text)


# -- the codebook --------------------------------------------------------------------


def test_codebook_page_renders_the_published_file_with_its_diagram(client, site_root) -> None:
    response = client.get("/codebook")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=60"
    page = response.text
    for model in MODELS:
        assert f'<h2 id="{model.table}">{model.table}</h2>' in page
        assert f'href="#{model.table}"' in page
    # Each table scrolls in its own region, named by its heading.
    assert 'role="region" tabindex="0" aria-label="events"' in page
    # The file's link to the diagram points where the diagram is served.
    diagram = f"/{settings.DIAGRAM_FILE}"
    assert f'<a href="/data{diagram}"><code>tables.svg</code></a>' in page
    assert f'<img src="/data{diagram}"' in page
    assert f'href="/data/{settings.CODEBOOK_FILE}" download' in page
    markdown = (site_root / settings.CODEBOOK_FILE).read_text(encoding="utf-8")
    assert "What kind of event it is" in markdown and "What kind of event it is" in page


def test_landing_page_shows_the_diagram_and_links_the_codebook(client) -> None:
    page = _page(client, "/")
    assert f'<img src="/data/{settings.DIAGRAM_FILE}"' in page
    assert 'alt="Diagram of the tables and their keys' in page
    assert 'href="/codebook#how-the-tables-join"' in page
    assert "/-/coop100-codebook.css" in page


def test_codebook_files_are_served_as_their_resources_say(client) -> None:
    svg = client.get(f"/data/{settings.DIAGRAM_FILE}")
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml; charset=utf-8"
    markdown = client.get(f"/data/{settings.CODEBOOK_FILE}")
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text.startswith("# Codebook: ")


# -- entity JSON-LD ------------------------------------------------------------------


def test_person_page_is_a_person_with_preferred_affiliations_and_events(
    client, package_rows
) -> None:
    (person,) = _jsonld(_page(client, f"/{DATABASE}/people/jurgen-schwettmann"))
    url = f"{SITE}/{DATABASE}/people/jurgen-schwettmann"
    assert person["@type"] == "Person" and person["@id"] == url == person["url"]
    assert person["name"] == "Jürgen Schwettmann"
    assert "sameAs" not in person  # no source gives a Wikidata id for him
    spellings = {r["name"] for r in package_rows["person_names"]}
    assert set(person["alternateName"]) <= spellings - {"Jürgen Schwettmann"}
    assert person["alternateName"]
    preferred = [
        r
        for r in package_rows["affiliations"]
        if r["person_id"] == "jurgen-schwettmann"
        and r["preferred"] == "true"
        and r["organisation_id"]
    ]
    roles = [(a["roleName"], a["affiliation"]["@id"]) for a in person["affiliation"]]
    assert sorted(roles) == sorted(
        (r["role"], f"{SITE}/{DATABASE}/organisations/{r['organisation_id']}") for r in preferred
    )
    events = {p["performerIn"]["@id"] for p in person["performerIn"]}
    assert events == {
        f"{SITE}/{DATABASE}/events/{p['event_id']}"
        for p in package_rows["participations"]
        if p["person_id"] == "jurgen-schwettmann"
    }


def test_organisation_page_is_an_organization_same_as_its_wikidata_item(client) -> None:
    (org,) = _jsonld(_page(client, f"/{DATABASE}/organisations/ilo"))
    assert org["@type"] == "Organization"
    assert org["@id"] == f"{SITE}/{DATABASE}/organisations/ilo"
    assert org["sameAs"] == "http://www.wikidata.org/entity/Q54129"
    department = f"{SITE}/{DATABASE}/organisations/ilo-enterprises-department"
    assert {"@type": "Organization", "@id": department, "name": "Enterprises Department"} in org[
        "subOrganization"
    ]
    (unit,) = _jsonld(_page(client, f"/{DATABASE}/organisations/ilo-cooperatives-unit"))
    assert "sameAs" not in unit
    assert unit["parentOrganization"]["@id"].endswith("/organisations/ilo-enterprises-department")
    members = {m["member"]["@id"].rsplit("/", 1)[1] for m in unit["member"]}
    assert "simel-esim" in members


def test_event_page_is_an_event_with_its_programme(client, package_rows) -> None:
    (event,) = _jsonld(_page(client, f"/{DATABASE}/events/ilo-coop-100-launch-webinar"))
    assert event["@type"] == "Event"
    assert event["@id"] == f"{SITE}/{DATABASE}/events/ilo-coop-100-launch-webinar"
    assert event["startDate"] == "2020-03-23"
    assert event["organizer"]["@id"] == f"{SITE}/{DATABASE}/organisations/ilo"
    assert event["superEvent"]["@id"] == f"{SITE}/{DATABASE}/events/ilo-coop-100"
    programme = [
        p for p in package_rows["participations"] if p["event_id"] == "ilo-coop-100-launch-webinar"
    ]
    assert len(event["performer"]) == len(programme)
    assert {
        (p["roleName"], p["performer"]["@id"].rsplit("/", 1)[1]) for p in event["performer"]
    } == {(p["role"], p["person_id"]) for p in programme}
    # The landing page names the same event by the same @id.
    landing = _jsonld(_page(client, "/"))
    about = {e["@id"] for node in landing for e in node.get("about", [])}
    assert event["@id"] in about


@pytest.mark.parametrize("path", [f"/{DATABASE}/topics/cooperatives", f"/{DATABASE}/sources/s1"])
def test_other_row_pages_carry_no_entity(client, path) -> None:
    assert not [n for n in _jsonld(_page(client, path)) if n["@type"] != "Dataset"]


# -- loading snippets ----------------------------------------------------------------


def _snippets(page: str) -> dict[str, str]:
    found = re.findall(r'<code id="code-([a-z]+)"[^>]*>(.*?)</code>', page, re.S)
    return {ident: html.unescape(code) for ident, code in found}


def test_every_table_page_has_its_snippets_at_this_versions_urls(client, site) -> None:
    from coop100.site.downloads import read_downloads

    version = read_downloads(site.data_dir).version
    for model in MODELS:
        page = _page(client, f"/{DATABASE}/{model.table}")
        snippets = _snippets(page)
        assert list(snippets) == [ident for ident, *_ in SNIPPETS]
        parquet = f"{BASE}/data/v/{version}/build/parquet/{model.table}.parquet"
        for ident, code in snippets.items():
            expected = (
                f"{BASE}/data/v/{version}/datapackage.json" if ident == "frictionless" else parquet
            )
            assert expected in code, (model.table, ident)
        assert 'data-copy="code-pandas" data-tool="pandas" hidden>Copy' in page
        assert '<script src="/-/coop100-copy.js"></script>' in page


def test_copy_script_is_served_from_the_site(client) -> None:
    response = client.get("/-/coop100-copy.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "navigator.clipboard.writeText" in response.text


def test_sitemap_lists_the_codebook(client) -> None:
    assert "<loc>http://localhost/codebook</loc>" in client.get("/sitemap-pages.xml").text
