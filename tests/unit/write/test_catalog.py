"""What portals, Zenodo and feed readers read: the DCAT-AP catalogue (checked with
pySHACL against SEMIC's DCAT-AP 3 shapes, vendored), .zenodo.json (against Zenodo's
deposit schema, vendored), the Atom feed of releases (read back with feedparser), the
one canonical address and the DOI setting; and how the site serves and announces them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import pytest
import yaml
from pyshacl import validate
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from coop100 import settings
from coop100.pipeline import build
from coop100.problems import RecordsError
from coop100.read.records import read_about
from coop100.site.build import build_site, datasette_app
from coop100.versions.release import read_releases
from coop100.write.archive import package_files
from coop100.write.digest import file_digest
from tests.conftest import RECORDS
from tests.site_fixtures import SiteClient

SHAPES = Path(__file__).parents[2] / "dcat-ap-shacl" / "dcat-ap-SHACL.ttl"
ZENODO_SCHEMA = Path(__file__).parents[2] / "zenodo-schema" / "legacyrecord.json"
SPDX = "http://spdx.org/rdf/terms#"
# Open namespaces: rdflib's closed ones warn at every name pytest looks up on them.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
DOI = "10.5281/zenodo.1234567"


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return Graph().parse(SHAPES)


def _conforms(data: Graph, shapes: Graph) -> tuple[bool, str]:
    # RDFS inference (owlrl, offline) gives every IRI the class rdfs:Resource that the
    # shapes ask of dct:relation's values; every other class is stated in the catalogue.
    conforms, _, text = validate(data, shacl_graph=shapes, inference="rdfs", allow_warnings=False)
    return bool(conforms), str(text)


def _graph(root: Path, name: str = settings.CATALOG_TURTLE) -> Graph:
    return Graph().parse(root / name, format="json-ld" if name.endswith("jsonld") else "turtle")


@pytest.mark.parametrize("name", [settings.CATALOG_TURTLE, settings.CATALOG_JSONLD])
def test_catalogue_conforms_to_dcat_ap_3(fresh_build: Path, shapes: Graph, name: str) -> None:
    conforms, report = _conforms(_graph(fresh_build, name), shapes)
    assert conforms, report


def test_turtle_and_jsonld_hold_the_same_graph(fresh_build: Path) -> None:
    assert isomorphic(_graph(fresh_build), _graph(fresh_build, settings.CATALOG_JSONLD))


def test_a_catalogue_missing_what_dcat_ap_requires_is_refused(
    fresh_build: Path, shapes: Graph
) -> None:
    graph = _graph(fresh_build)
    site = read_about(RECORDS).homepage
    distribution = URIRef(f"{site}/#distribution-people")
    graph.remove((distribution, DCAT.accessURL, None))
    graph.add((URIRef(f"{site}/#dataset"), DCTERMS.issued, Literal("not a date")))
    conforms, report = _conforms(graph, shapes)
    assert not conforms
    assert f"Focus Node: <{distribution}>" in report and "dcat:accessURL" in report
    assert "dct:issued" in report or "dc1:issued" in report


def test_catalogue_says_what_the_descriptor_says(fresh_build: Path) -> None:
    graph = _graph(fresh_build)
    about = read_about(RECORDS)
    site = about.homepage
    descriptor = json.loads((fresh_build / settings.DESCRIPTOR).read_text(encoding="utf-8"))
    dataset = URIRef(f"{site}/#dataset")
    assert (URIRef(f"{site}/#catalog"), DCAT.dataset, dataset) in graph
    assert graph.value(dataset, DCTERMS.title) == Literal(about.title, lang="en")
    assert graph.value(dataset, DCAT.landingPage) == URIRef(f"{site}/")
    assert str(graph.value(dataset, URIRef(f"{DCAT}version"))) == descriptor["version"]
    assert str(graph.value(dataset, DCTERMS.modified)) == descriptor["coop100:released"]
    keywords = {str(k) for k in graph.objects(dataset, DCAT.keyword)}
    assert keywords == set(descriptor["keywords"])
    publisher = graph.value(dataset, DCTERMS.publisher)
    assert str(graph.value(publisher, FOAF.name)) == about.publisher.name
    contact = graph.value(dataset, DCAT.contactPoint)
    assert about.contact is not None and about.contact.url
    vcard = "http://www.w3.org/2006/vcard/ns#"
    assert graph.value(contact, URIRef(f"{vcard}hasURL")) == URIRef(about.contact.url)
    period = graph.value(dataset, DCTERMS.temporal)
    assert str(graph.value(period, DCAT.startDate)) == "2020-03-23"
    assert str(graph.value(period, DCAT.endDate)) == "2020-03-23"
    themes = {str(t).rsplit("/", 1)[1] for t in graph.objects(dataset, DCAT.theme)}
    assert themes == set(about.themes)
    sources = {s["path"] for s in descriptor["sources"] if "path" in s}
    assert {str(s) for s in graph.objects(dataset, DCTERMS.relation)} == sources
    # The identifier is the dataset's own IRI until a DOI is set.
    assert str(graph.value(dataset, DCTERMS.identifier)) == f"{site}/#dataset"


def test_one_distribution_per_downloadable_file(fresh_build: Path) -> None:
    graph = _graph(fresh_build)
    site = read_about(RECORDS).homepage
    dataset = URIRef(f"{site}/#dataset")
    downloads = {
        str(graph.value(d, DCAT.downloadURL)): d for d in graph.objects(dataset, DCAT.distribution)
    }
    files = package_files(fresh_build / settings.DESCRIPTOR)
    described = [f for f in files if not f.startswith(settings.SCHEMAS_DIR + "/")]
    expected = {f"{site}/data/{name}" for name in described}
    expected |= {f"{site}/data/coop100.zip", f"{site}/coop100.db"}
    assert set(downloads) == expected
    licence = URIRef(read_about(RECORDS).licenses[0].path)
    for url, distribution in downloads.items():
        assert graph.value(distribution, DCTERMS.license) == licence, url
        assert graph.value(distribution, DCAT.accessURL) == URIRef(url)
        if url.endswith((".zip", ".db")):  # built with the site, after the catalogue
            continue
        size, sha256 = file_digest(fresh_build / url.removeprefix(f"{site}/data/"))
        assert graph.value(distribution, DCAT.byteSize).toPython() == size, url
        checksum = graph.value(distribution, URIRef(f"{SPDX}checksum"))
        assert str(graph.value(checksum, URIRef(f"{SPDX}checksumValue"))) == sha256, url
        media = str(graph.value(distribution, DCAT.mediaType) or "")
        assert media.startswith("https://www.iana.org/assignments/media-types/") or url.endswith(
            ".cff"  # application/x-yaml: no IANA registration to point at
        ), url
    assert graph.value(
        downloads[f"{site}/data/build/parquet/people.parquet"], DCAT.mediaType
    ) == URIRef("https://www.iana.org/assignments/media-types/application/vnd.apache.parquet")


# -- Zenodo ------------------------------------------------------------------------------


def _zenodo(root: Path) -> dict[str, Any]:
    data = json.loads((root / settings.ZENODO_FILE).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _zenodo_errors(data: dict[str, Any]) -> list[str]:
    schema = json.loads(ZENODO_SCHEMA.read_text(encoding="utf-8"))
    return sorted(e.message for e in jsonschema.Draft4Validator(schema).iter_errors(data))


def test_zenodo_metadata_is_valid_deposit_metadata(fresh_build: Path) -> None:
    data = _zenodo(fresh_build)
    assert _zenodo_errors(data) == []
    about = read_about(RECORDS)
    # What Zenodo needs to publish a dataset and mint its DOI.
    assert data["upload_type"] == "dataset"
    assert data["title"] == about.title and data["description"] == about.description
    assert data["creators"] == [{"name": "coop100 contributors"}]
    assert data["license"] == "CC-BY-4.0" and data["access_right"] == "open"
    assert data["keywords"] == about.keywords
    related = {(r["identifier"], r["relation"]) for r in data["related_identifiers"]}
    descriptor = json.loads((fresh_build / settings.DESCRIPTOR).read_text(encoding="utf-8"))
    for source in descriptor["sources"]:
        if "path" in source:
            assert (source["path"], "isDerivedFrom") in related
    assert (f"{about.homepage}/", "isVariantFormOf") in related
    assert (about.repository, "isSupplementedBy") in related


def test_zenodo_schema_refuses_what_zenodo_would(fresh_build: Path) -> None:
    bad = _zenodo(fresh_build) | {"upload_type": "data", "licence": "CC-BY-4.0"}
    assert _zenodo_errors(bad) == [
        "'data' is not one of ['publication', 'poster', 'presentation', 'dataset', 'image',"
        " 'video', 'software', 'lesson', 'workflow', 'physicalobject', 'other']",
        "Additional properties are not allowed ('licence' was unexpected)",
    ]


def test_citation_names_the_code_the_site_the_sources_and_whom_to_ask(fresh_build: Path) -> None:
    citation = yaml.safe_load((fresh_build / settings.CITATION_FILE).read_text(encoding="utf-8"))
    about = read_about(RECORDS)
    assert citation["repository-code"] == about.repository
    assert citation["url"] == about.homepage
    assert about.contact is not None
    assert citation["contact"] == [{"name": about.contact.name, "website": about.contact.url}]
    descriptor = json.loads((fresh_build / settings.DESCRIPTOR).read_text(encoding="utf-8"))
    assert [r["title"] for r in citation["references"]] == [
        s["title"] for s in descriptor["sources"]
    ]
    assert all(r["type"] == "website" and r["authors"] for r in citation["references"])
    assert "doi" not in citation


# -- the releases feed -------------------------------------------------------------------


def test_feed_has_one_entry_per_release(fresh_build: Path) -> None:
    parsed = feedparser.parse((fresh_build / settings.FEED_FILE).read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    about = read_about(RECORDS)
    releases = read_releases(RECORDS)
    assert parsed.feed.id == f"{about.homepage}/changes.atom"
    assert {(link.rel, link.href) for link in parsed.feed.links} == {
        ("self", f"{about.homepage}/changes.atom"),
        ("alternate", f"{about.homepage}/"),
    }
    assert parsed.feed.updated == f"{releases[0].released}T00:00:00+00:00"
    assert len(parsed.entries) == len(releases)
    for entry, release in zip(parsed.entries, releases, strict=True):
        assert release.version in entry.title
        assert entry.updated.startswith(release.released)
        assert entry.content[0].value == release.notes
        links = {link.rel: link.href for link in entry.links}
        assert links == {
            "alternate": f"{about.repository}/blob/v{release.version}/CHANGES.md",
            "related": f"{about.repository}/raw/v{release.version}/datapackage.json",
        }


# -- the canonical address and the DOI ---------------------------------------------------


def _project(tmp_path: Path, extra: str = "") -> Path:
    root = tmp_path / "project"
    shutil.copytree(RECORDS, root / "records")
    if extra:
        package = root / "records" / "package.yaml"
        package.write_text(package.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return root


def _metadata_text(root: Path) -> str:
    names = [
        settings.DESCRIPTOR,
        settings.CITATION_FILE,
        *settings.CATALOG_FILES,
    ]
    return "\n".join((root / name).read_text(encoding="utf-8") for name in names)


def test_every_absolute_url_starts_with_the_canonical_address(fresh_build: Path) -> None:
    site = read_about(RECORDS).homepage
    graph = _graph(fresh_build)
    ours = [str(node) for node in graph.all_nodes() if str(node).startswith("https://coop100")]
    assert ours and all(url.startswith(site + "/") for url in ours)
    assert "localhost" not in _metadata_text(fresh_build)


def test_a_test_server_overrides_the_canonical_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    canonical = read_about(RECORDS).homepage
    monkeypatch.setenv(settings.SITE_URL_ENV, "http://127.0.0.1:8001")
    build(root)
    text = _metadata_text(root)
    assert canonical not in text
    assert "http://127.0.0.1:8001/data/build/csv/people.csv" in text
    site = build_site(root)
    client = SiteClient(datasette_app(site))
    try:
        page = client.get("/").text
    finally:
        client.loop.close()
    assert '"contentUrl": "http://127.0.0.1:8001/data/build/csv/people.csv"' in page


@pytest.mark.parametrize(
    "value", ["127.0.0.1:8001", "http://127.0.0.1:8001/", "ftp://host", "http://host/x"]
)
def test_a_bad_site_address_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(settings.SITE_URL_ENV, value)
    with pytest.raises(RecordsError) as caught:
        read_about(RECORDS)
    assert str(caught.value) == (
        f"{settings.SITE_URL_ENV}: {value!r} is not a site address; give"
        " http(s)://host[:port] with no path, query or trailing slash, or unset it to use"
        " homepage in records/package.yaml"
    )


def test_no_doi_appears_until_one_is_set(fresh_build: Path, client) -> None:
    assert read_about(RECORDS).doi is None
    assert "doi" not in _metadata_text(fresh_build).lower()
    assert "cite-as" not in client.get("/").headers["link"]


def test_a_doi_fills_every_identifier(tmp_path: Path) -> None:
    root = _project(tmp_path, f"doi: {DOI}\n")
    build(root)
    url = f"https://doi.org/{DOI}"
    descriptor = json.loads((root / settings.DESCRIPTOR).read_text(encoding="utf-8"))
    assert descriptor["id"] == url
    citation = yaml.safe_load((root / settings.CITATION_FILE).read_text(encoding="utf-8"))
    assert citation["doi"] == DOI
    graph = _graph(root)
    site = read_about(RECORDS).homepage
    assert str(graph.value(URIRef(f"{site}/#dataset"), DCTERMS.identifier)) == url
    site_files = build_site(root)
    client = SiteClient(datasette_app(site_files))
    try:
        response = client.get("/")
    finally:
        client.loop.close()
    assert f'<{url}>; rel="cite-as"' in response.headers["link"]
    assert f'"identifier": "{url}"' in response.text
    assert f"[Data set]. {url}</p>" in response.text


def test_a_malformed_doi_is_refused(tmp_path: Path) -> None:
    root = _project(tmp_path, "doi: zenodo.1234567\n")
    with pytest.raises(RecordsError) as caught:
        read_about(root / "records")
    assert "field 'doi'" in str(caught.value)


# -- served and announced ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/catalog.ttl", "text/turtle; charset=utf-8"),
        ("/catalog.jsonld", "application/ld+json"),
        ("/changes.atom", "application/atom+xml"),
    ],
)
def test_site_serves_catalogue_and_feed(client, site_root: Path, path: str, media_type: str):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == (site_root / path.lstrip("/")).read_bytes()
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-location"].endswith(path)


def test_landing_page_announces_the_catalogue(client) -> None:
    page = client.get("/").text
    assert '<link rel="alternate" type="text/turtle" href="/catalog.ttl"' in page
    assert '<link rel="alternate" type="application/ld+json" href="/catalog.jsonld"' in page


@pytest.mark.parametrize(
    "path", ["/", "/coop100", "/coop100/statements", "/coop100/people/simel-esim", "/changes"]
)
def test_every_page_links_the_releases_feed(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    head = response.text.split("</head>", 1)[0]
    assert '<link rel="alternate" type="application/atom+xml" href="/changes.atom"' in head
