"""What crawlers read: schema.org JSON-LD (parsed from the served HTML by extruct, as a
crawler would), robots.txt (read by Protego with Google's rules) and the sitemaps."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import extruct
import pytest
from protego import Protego

from coop100 import settings
from coop100.load.database import csv_resources, read_descriptor
from coop100.read.records import read_about
from coop100.settings import DESCRIPTOR
from coop100.versions.release import read_releases
from tests.conftest import RECORDS

# Where the test client asks (robots.txt and the sitemaps answer for it), and the
# package's canonical address, which every JSON-LD URL starts with whatever the host.
BASE = "http://localhost"
SITE = read_about(RECORDS).homepage
# Google's Dataset guidelines: the required properties, then the recommended ones
# the package has something true to say for (funder, includedInDataCatalog, sameAs
# and spatialCoverage it has not: see site/jsonld.py).
REQUIRED = ("name", "description")
RECOMMENDED = (
    "alternateName",
    "creator",
    "distribution",
    "hasPart",
    "identifier",
    "isAccessibleForFree",
    "isBasedOn",
    "keywords",
    "license",
    "measurementTechnique",
    "temporalCoverage",
    "url",
    "variableMeasured",
    "version",
)


def _datasets(html: str) -> list[dict[str, Any]]:
    found = extruct.extract(html, base_url=SITE + "/", syntaxes=["json-ld"])["json-ld"]
    return [node for node in found if node.get("@type") == "Dataset"]


def _path(url: str, base: str = SITE) -> str:
    assert url.startswith(base + "/"), url
    return urlsplit(url).path


def _check_google(dataset: dict[str, Any]) -> None:
    for prop in REQUIRED:
        assert dataset.get(prop), prop
    assert 50 <= len(dataset["description"]) <= 5000
    for download in dataset["distribution"]:
        assert download["@type"] == "DataDownload"
        assert download["contentUrl"].startswith(SITE + "/")
        assert download["encodingFormat"]
    for creator in dataset["creator"]:
        assert creator["@type"] in ("Person", "Organization") and creator["name"]
    latest = read_releases(RECORDS)[0]
    assert dataset["version"] == latest.version
    assert dataset["datePublished"] == latest.released
    assert dataset["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert dataset["temporalCoverage"] == "2020-03-23"


def test_landing_page_has_one_complete_dataset(client, site_root) -> None:
    (dataset,) = _datasets(client.get("/").text)
    _check_google(dataset)
    for prop in RECOMMENDED:
        assert dataset.get(prop) not in (None, "", []), prop
    descriptor = read_descriptor(site_root / DESCRIPTOR)
    urls = {_path(d["contentUrl"]) for d in dataset["distribution"]}
    # Every data file: the tables, the Popolo export (not the notes or the citation).
    data = [r for r in descriptor["resources"] if r["name"] not in settings.RELEASE_DOCUMENTS]
    expected = {f"/data/{r['path']}" for r in data}
    expected |= {"/data/datapackage.json", "/data/coop100.zip", "/coop100.db"}
    assert urls == expected
    for url in urls:
        assert client.get(url).status_code == 200, url
    formats = {_path(d["contentUrl"]): d["encodingFormat"] for d in dataset["distribution"]}
    assert formats["/data/build/csv/people.csv"] == "text/csv"
    assert formats["/data/build/parquet/people.parquet"] == "application/vnd.apache.parquet"
    assert formats["/coop100.db"] == "application/vnd.sqlite3"
    assert formats[f"/data/{settings.POPOLO_FILE}"] == "application/json"
    variables = {v["name"] for v in dataset["variableMeasured"]}
    assert variables == {
        f"{r['name']}.{f['name']}" for r in csv_resources(descriptor) for f in r["schema"]["fields"]
    }
    assert all(
        v["@type"] == "PropertyValue" and v["description"] for v in dataset["variableMeasured"]
    )
    assert {_path(p["@id"]).rstrip("#") for p in dataset["hasPart"]} == {
        f"/coop100/{r['name']}" for r in csv_resources(descriptor)
    }


def test_the_event_is_what_the_dataset_is_about(client) -> None:
    (dataset,) = _datasets(client.get("/").text)
    events = {e["name"]: e for e in dataset["about"]}
    webinar = events["ILO COOP 100 launch webinar"]
    assert webinar["@type"] == "Event"
    assert webinar["startDate"] == webinar["endDate"] == "2020-03-23"
    assert webinar["eventAttendanceMode"] == "https://schema.org/OnlineEventAttendanceMode"
    assert webinar["location"] == {"@type": "VirtualLocation", "name": "GoToWebinar"}
    assert webinar["organizer"] == {
        "@type": "Organization",
        "name": "International Labour Organization",
    }
    performers = [p["name"] for p in webinar["performer"]]
    assert performers[0] == "Simel Esim" and len(performers) == 7
    assert webinar["superEvent"]["@id"] == events["ILO COOP 100 centenary programme"]["@id"]


def test_each_table_page_has_its_dataset(client, site_root) -> None:
    for resource in csv_resources(read_descriptor(site_root / DESCRIPTOR)):
        name = resource["name"]
        (dataset,) = _datasets(client.get(f"/coop100/{name}").text)
        _check_google(dataset)
        assert _path(dataset["url"]) == f"/coop100/{name}"
        assert dataset["isPartOf"] == {"@id": f"{SITE}/#dataset"}
        assert [_path(d["contentUrl"]) for d in dataset["distribution"]] == [
            f"/data/build/csv/{name}.csv",
            f"/data/build/parquet/{name}.parquet",
        ]
        assert [v["name"] for v in dataset["variableMeasured"]] == [
            f["name"] for f in resource["schema"]["fields"]
        ]


def test_json_ld_text_cannot_close_its_script(client) -> None:
    page = client.get("/").text
    scripts = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert len(scripts) == 1 and "<" not in scripts[0]


@pytest.fixture(scope="module")
def robots(client) -> Protego:
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    return Protego.parse(response.text)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/changes",
        "/coop100/statements",
        "/coop100/people/simel-esim",
        "/coop100/statement_topics",
        "/coop100/speakers",
        "/-/static/app.css",
        "/-/coop100.css",
        "/sitemap.xml",
    ],
)
def test_robots_let_crawlers_index_pages(robots: Protego, path: str) -> None:
    assert robots.can_fetch(BASE + path, "Googlebot")


@pytest.mark.parametrize(
    "path",
    [
        "/coop100?sql=select+1",
        "/coop100/statements?_facet=type",
        "/coop100/statements?type=claim&_facet=person_id",
        "/coop100/statements?_sort=text",
        "/coop100/statements?_next=10",
        "/coop100/statements.csv",
        "/coop100/statements.json",
        "/coop100/people/simel-esim.json",
        "/coop100.db",
        "/data/build/csv/people.csv",
        "/-/versions",
    ],
)
def test_robots_keep_crawlers_off_sql_exports_and_facets(robots: Protego, path: str) -> None:
    assert not robots.can_fetch(BASE + path, "Googlebot")


def test_robots_name_the_sitemap(robots: Protego) -> None:
    assert list(robots.sitemaps) == [f"{BASE}/sitemap.xml"]


def _locs(client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, path
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    return re.findall(r"<loc>([^<]+)</loc>", response.text)


def test_sitemaps_list_landing_table_and_row_pages(client, robots, package_rows) -> None:
    parts = _locs(client, "/sitemap.xml")
    assert parts[0] == f"{BASE}/sitemap-pages.xml"
    pages = _locs(client, "/sitemap-pages.xml")
    assert pages[:2] == [f"{BASE}/", f"{BASE}/changes"]
    rows: list[str] = []
    for part in parts[1:]:
        rows += _locs(client, _path(part, BASE))
    people = [u for u in rows if u.startswith(f"{BASE}/coop100/people/")]
    assert len(people) == len(package_rows["people"])
    assert f"{BASE}/coop100/people/simel-esim" in people
    for url in [*pages, *rows]:
        assert robots.can_fetch(url, "Googlebot"), url
    for url in pages[2:] + people[:2]:
        assert client.get(_path(url, BASE)).status_code == 200, url
    assert client.get("/sitemap-people-2.xml").status_code == 404
    assert client.get("/sitemap-nothing-1.xml").status_code == 404
