"""What portals, archives and feed readers read: the DCAT-AP catalogue, Zenodo's
metadata and the releases feed.

Written by the build right after datapackage.json, from the same facts (the
descriptor it has just written, records/package.yaml, the sources and
records/releases.json), so none of them says anything the descriptor does not:

- `catalog.ttl` and `catalog.jsonld`: a DCAT-AP 3 catalogue (rdflib) of one
  dataset with one distribution per file the site serves;
- `.zenodo.json`: Zenodo's deposit metadata, which it reads when a GitHub release
  is made and mints a DOI from;
- `changes.atom`: every release as an Atom entry (feedgen).

Every absolute URL starts with the package's homepage (its one canonical address,
models.About.homepage). The bytes depend on nothing but those facts: no clock, no
blank nodes, sorted JSON, explicit feed dates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.csv as pacsv

from coop100 import settings
from coop100.rules.models import DATA_THEMES, About, Source
from coop100.versions.release import Release
from coop100.write.archive import ZIP_NAME

# The vocabularies' IRIs the catalogue points at.
_IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
_EU = "http://publications.europa.eu/resource/authority/"
_FILE_TYPES = {"csv": "CSV", "json": "JSON", "zip": "ZIP"}  # EU file types we are sure of
_SHA256 = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"
# Media types IANA has registered (x- types have no IANA page to point at).
_REGISTERED = ("text/", "image/", "application/json", "application/zip", "application/vnd.")
DOI_RESOLVER = "https://doi.org/"


def site(about: About) -> str:
    """The site's canonical address, without a trailing slash."""
    return about.homepage.rstrip("/")


def download_url(about: About, path: str) -> str:
    """The absolute URL the site serves a package file at (path relative to the package)."""
    return f"{site(about)}/{settings.DOWNLOADS_MOUNT}/{path}"


def doi_url(about: About) -> str | None:
    """The DOI as a URL, or None until one is minted."""
    return f"{DOI_RESOLVER}{about.doi}" if about.doi else None


def release_notes_url(about: About, version: str) -> str:
    """A release's notes as its git tag holds them (releases are tagged v<version>)."""
    return f"{about.repository}/blob/v{version}/{settings.CHANGES_FILE}"


def versioned_descriptor_url(about: About, version: str) -> str:
    """A release's datapackage.json at its tag: its relative paths resolve to that release."""
    return f"{about.repository}/raw/v{version}/{settings.DESCRIPTOR}"


# -- the facts the files share ---------------------------------------------------------


def _coverage(root: Path) -> tuple[str, str] | None:
    """First and last day of the events (start_date, and end_date where given)."""
    path = root / settings.CSV_DIR / "events.csv"
    if not path.is_file():
        return None
    columns = ["start_date", "end_date"]
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            include_columns=columns, column_types=dict.fromkeys(columns, "string")
        ),
    )
    if table.num_rows == 0:
        return None
    start = pc.min(table["start_date"]).as_py()
    ends = pc.coalesce(table["end_date"], table["start_date"])
    return start, pc.max(ends).as_py()


def _files(root: Path, descriptor: dict[str, Any], descriptor_bytes: bytes) -> list[dict[str, Any]]:
    """Every file the site serves for download, with what the descriptor says of it."""
    files = [
        {
            "name": "datapackage",
            "title": "Data Package descriptor",
            "description": "The Frictionless Data Package (v2) descriptor: every file's"
            " schema, size and sha256.",
            "path": settings.DESCRIPTOR,
            "format": "json",
            "mediatype": "application/json",
            "bytes": len(descriptor_bytes),
            "sha256": hashlib.sha256(descriptor_bytes).hexdigest(),
        }
    ]
    for resource in descriptor["resources"]:
        size = resource.get("bytes", resource.get("coop100:bytes"))
        files.append(
            {
                "name": resource["name"],
                "title": resource.get("title", resource["name"]),
                "description": resource.get("description", ""),
                "path": resource["path"],
                "format": resource.get("format", ""),
                "mediatype": resource.get("mediatype", ""),
                "bytes": size,
                "sha256": str(resource.get("hash", "")).removeprefix("sha256:") or None,
            }
        )
    # Built with the site from the files above (coop100.site.build): their bytes are
    # not known when the catalogue is written, so they have no size or checksum here.
    files += [
        {
            "name": "zip",
            "title": "The whole package (zip)",
            "description": "Every file above in one zip.",
            "path": ZIP_NAME,
            "format": "zip",
            "mediatype": "application/zip",
            "bytes": None,
            "sha256": None,
        },
        {
            "name": "sqlite",
            "title": "SQLite database",
            "description": "The tables loaded into SQLite, as the site serves them.",
            "path": None,
            "format": "db",
            "mediatype": "application/vnd.sqlite3",
            "bytes": None,
            "sha256": None,
        },
    ]
    return files


# -- DCAT-AP 3 -------------------------------------------------------------------------


def catalog_graph(
    root: Path,
    descriptor: dict[str, Any],
    descriptor_bytes: bytes,
    sources: Sequence[Source],
    releases: Sequence[Release],
    about: About,
) -> Any:
    """The DCAT-AP 3 catalogue as an rdflib Graph: catalogue, dataset, distributions.

    Every node has an IRI under the site (no blank nodes, so the serialisations are
    stable), and every node the DCAT-AP shapes constrain by class states its class.
    """
    # Lazy, for start-up time: rdflib is slow to import and only this file needs it.
    from rdflib import Graph, Literal, Namespace, URIRef
    from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

    spdx = Namespace(_JSONLD_CONTEXT["spdx"])
    vcard = Namespace(_JSONLD_CONTEXT["vcard"])
    base = site(about)
    graph = Graph(bind_namespaces="core")
    graph.bind("dcat", DCAT)
    graph.bind("dct", DCTERMS)
    graph.bind("foaf", FOAF)
    graph.bind("vcard", vcard)
    graph.bind("spdx", spdx)
    graph.bind("skos", SKOS)

    def node(iri: str, kind: URIRef) -> URIRef:
        ref = URIRef(iri)
        graph.add((ref, RDF.type, kind))
        return ref

    def text(value: str) -> Literal:
        return Literal(value, lang="en")

    catalog = node(f"{base}/#catalog", DCAT.Catalog)
    dataset = node(f"{base}/#dataset", DCAT.Dataset)
    publisher = node(f"{base}/#publisher", FOAF.Agent)
    graph.add((publisher, FOAF.name, Literal(about.publisher.name)))
    if about.publisher.url:
        graph.add((publisher, FOAF.homepage, node(about.publisher.url, FOAF.Document)))
    licence = node(about.licenses[0].path, DCTERMS.LicenseDocument)
    english = node(f"{_EU}language/ENG", DCTERMS.LinguisticSystem)
    home = node(f"{base}/", FOAF.Document)
    released = releases[-1].released if releases else descriptor["coop100:released"]

    graph.add((catalog, DCTERMS.title, text(f"{about.title}: catalogue")))
    graph.add((catalog, DCTERMS.description, text(f"The data package {about.name} and its files.")))
    graph.add((catalog, DCTERMS.publisher, publisher))
    graph.add((catalog, FOAF.homepage, home))
    graph.add((catalog, DCTERMS.language, english))
    graph.add((catalog, DCTERMS.license, licence))
    graph.add((catalog, DCTERMS.issued, Literal(released, datatype=XSD.date)))
    graph.add(
        (catalog, DCTERMS.modified, Literal(descriptor["coop100:released"], datatype=XSD.date))
    )
    graph.add((catalog, DCAT.dataset, dataset))

    identifier = doi_url(about) or f"{base}/#dataset"
    graph.add((dataset, DCTERMS.identifier, Literal(identifier)))
    graph.add((dataset, DCTERMS.title, text(about.title)))
    graph.add((dataset, DCTERMS.description, text(about.description)))
    graph.add((dataset, DCTERMS.publisher, publisher))
    graph.add((dataset, DCAT.landingPage, home))
    graph.add((dataset, DCTERMS.language, english))
    # DCAT 3's dcat:version, which rdflib's (DCAT 2) namespace does not list yet.
    graph.add((dataset, URIRef(f"{DCAT}version"), Literal(descriptor["version"])))
    graph.add((dataset, DCTERMS.issued, Literal(released, datatype=XSD.date)))
    graph.add(
        (dataset, DCTERMS.modified, Literal(descriptor["coop100:released"], datatype=XSD.date))
    )
    for word in about.keywords:
        graph.add((dataset, DCAT.keyword, text(word)))
    themes = node(f"{_EU}data-theme", SKOS.ConceptScheme)
    graph.add((themes, DCTERMS.title, text("Data theme")))
    graph.add((catalog, DCAT.themeTaxonomy, themes))
    for theme in about.themes:
        concept = node(f"{_EU}data-theme/{theme}", SKOS.Concept)
        graph.add((concept, SKOS.prefLabel, text(DATA_THEMES[theme])))
        graph.add((concept, SKOS.inScheme, themes))
        graph.add((dataset, DCAT.theme, concept))
    if about.contact is not None:
        contact = node(f"{base}/#contact", vcard.Organization)
        graph.add((contact, RDF.type, vcard.Kind))  # what Organization is a kind of
        graph.add((contact, vcard.fn, Literal(about.contact.name)))
        if about.contact.url:
            graph.add((contact, vcard.hasURL, URIRef(about.contact.url)))
        if about.contact.email:
            graph.add((contact, vcard.hasEmail, URIRef(f"mailto:{about.contact.email}")))
        graph.add((dataset, DCAT.contactPoint, contact))
    span = _coverage(root)
    if span is not None:
        period = node(f"{base}/#temporal", DCTERMS.PeriodOfTime)
        graph.add((period, DCAT.startDate, Literal(span[0], datatype=XSD.date)))
        graph.add((period, DCAT.endDate, Literal(span[1], datatype=XSD.date)))
        graph.add((dataset, DCTERMS.temporal, period))
    # The pages the data rests on (the descriptor's sources).
    for source in sources:
        if source.url:
            graph.add((dataset, DCTERMS.relation, URIRef(source.url)))

    for file in _files(root, descriptor, descriptor_bytes):
        url = download_url(about, file["path"]) if file["path"] else f"{base}/{settings.DB_NAME}"
        distribution = node(f"{base}/#distribution-{file['name']}", DCAT.Distribution)
        graph.add((dataset, DCAT.distribution, distribution))
        graph.add((distribution, DCTERMS.title, text(file["title"])))
        if file["description"]:
            graph.add((distribution, DCTERMS.description, text(file["description"])))
        graph.add((distribution, DCAT.accessURL, URIRef(url)))
        graph.add((distribution, DCAT.downloadURL, URIRef(url)))
        graph.add((distribution, DCTERMS.license, licence))
        mediatype = file["mediatype"]
        if mediatype.startswith(_REGISTERED):
            kind = node(f"{_IANA_MEDIA_TYPES}{mediatype}", DCTERMS.MediaType)
            graph.add((distribution, DCAT.mediaType, kind))
        if file["format"] in _FILE_TYPES:
            kind = node(f"{_EU}file-type/{_FILE_TYPES[file['format']]}", DCTERMS.MediaTypeOrExtent)
            graph.add((distribution, DCTERMS.format, kind))
        if file["bytes"] is not None:
            graph.add(
                (
                    distribution,
                    DCAT.byteSize,
                    Literal(file["bytes"], datatype=XSD.nonNegativeInteger),
                )
            )
        if file["sha256"]:
            checksum = node(f"{base}/#checksum-{file['name']}", spdx.Checksum)
            graph.add((checksum, spdx.algorithm, node(_SHA256, spdx.ChecksumAlgorithm)))
            graph.add(
                (checksum, spdx.checksumValue, Literal(file["sha256"], datatype=XSD.hexBinary))
            )
            graph.add((distribution, spdx.checksum, checksum))
    return graph


def catalog_turtle(graph: Any) -> bytes:
    """The catalogue as Turtle (rdflib sorts subjects, predicates and objects)."""
    return bytes(graph.serialize(format="turtle", encoding="utf-8"))


_JSONLD_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "spdx": "http://spdx.org/rdf/terms#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def catalog_jsonld(graph: Any) -> bytes:
    """The catalogue as JSON-LD with its context inline (readable offline), sorted."""
    data = json.loads(graph.serialize(format="json-ld", context=_JSONLD_CONTEXT, auto_compact=True))
    nodes = data.get("@graph", [data])
    for item in nodes:
        for key, value in item.items():
            if isinstance(value, list):
                item[key] = sorted(value, key=lambda v: json.dumps(v, sort_keys=True))
    nodes.sort(key=lambda item: str(item.get("@id", "")))
    ordered = {"@context": _JSONLD_CONTEXT, "@graph": nodes}
    return (json.dumps(ordered, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


# -- Zenodo ------------------------------------------------------------------------------


def zenodo_metadata(about: About, sources: Sequence[Source]) -> dict[str, Any]:
    """.zenodo.json: what Zenodo's GitHub integration deposits with a release.

    Zenodo takes the version and date from the GitHub release itself; its deposit
    schema has no field for them. The DOI is not given either: Zenodo mints one per
    release, and records/package.yaml's `doi` names the one to cite.
    """
    creators = [{"name": c.title} for c in about.contributors if "creator" in c.roles]
    related = [
        {"identifier": site(about) + "/", "relation": "isVariantFormOf", "scheme": "url"},
        {"identifier": about.repository, "relation": "isSupplementedBy", "scheme": "url"},
    ]
    related += [
        {"identifier": s.url, "relation": "isDerivedFrom", "scheme": "url"}
        for s in sources
        if s.url
    ]
    metadata: dict[str, Any] = {
        "upload_type": "dataset",
        "title": about.title,
        "description": about.description,
        "creators": creators,
        "access_right": "open",
        "license": about.licenses[0].name,
        "keywords": list(about.keywords),
        "notes": about.credit,
        "related_identifiers": related,
    }
    if about.contact is not None:
        metadata["contributors"] = [{"name": about.contact.name, "type": "ContactPerson"}]
    return metadata


# -- Atom --------------------------------------------------------------------------------


def _midnight(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _entry_class() -> Any:
    """feedgen's FeedEntry, writing its links' rel, type and title.

    feedgen 1.0.0 writes an entry's links with their href only: its loop variable is
    reused for the element it creates (lkiesow/python-feedgen#135, open). The
    entry's element is mended from the links it was given, in the same order.
    """
    # Lazy, for start-up time: only the feed needs feedgen.
    from feedgen.entry import FeedEntry

    class Entry(FeedEntry):  # type: ignore[misc]
        def atom_entry(self, extensions: bool = True) -> Any:
            element = super().atom_entry(extensions)
            written = element.findall("link")  # feedgen names its elements unqualified
            for link, given in zip(written, self.link(), strict=True):
                for key in ("rel", "type", "hreflang", "title", "length"):
                    if given.get(key):
                        link.set(key, str(given[key]))
            return element

    return Entry


def releases_feed(releases: Sequence[Release], about: About) -> bytes:
    """changes.atom: one entry per release, newest first, dated by its release date."""
    # Lazy, for start-up time: only the feed needs feedgen.
    from feedgen.feed import FeedGenerator

    base = site(about)
    entry_class = _entry_class()
    feed = FeedGenerator()
    feed.id(f"{base}/{settings.FEED_FILE}")
    feed.title(f"{about.title}: releases")
    feed.subtitle(f"Every release of the data package {about.name}, with its notes.")
    feed.link(href=f"{base}/{settings.FEED_FILE}", rel="self", type="application/atom+xml")
    feed.link(href=f"{base}/", rel="alternate", type="text/html")
    feed.author(
        {
            "name": about.publisher.name,
            **({"uri": about.publisher.url} if about.publisher.url else {}),
        }
    )
    feed.rights(f"{about.licenses[0].title}: {about.licenses[0].path}")
    feed.language("en")
    feed.generator("coop100")
    feed.updated(_midnight(releases[0].released) if releases else datetime(1970, 1, 1, tzinfo=UTC))
    for release in releases:
        entry = feed.add_entry(entry_class(), order="append")
        entry.id(f"{about.repository}/releases/tag/v{release.version}")
        entry.title(f"{about.name} {release.version} ({release.released})")
        entry.updated(_midnight(release.released))
        entry.published(_midnight(release.released))
        entry.content(release.notes, type="text")
        entry.link(
            href=release_notes_url(about, release.version),
            rel="alternate",
            type="text/html",  # GitHub's page showing CHANGES.md at that tag
            title=f"Release notes of {release.version}",
        )
        entry.link(
            href=versioned_descriptor_url(about, release.version),
            rel="related",
            type="application/json",
            title=f"datapackage.json of {release.version}",
        )
    return bytes(feed.atom_str(pretty=True, encoding="UTF-8"))


# -- writing -----------------------------------------------------------------------------


def write_catalog_files(
    root: Path,
    descriptor: dict[str, Any],
    descriptor_bytes: bytes,
    sources: Sequence[Source],
    releases: Sequence[Release],
    about: About,
) -> None:
    """Write settings.CATALOG_FILES under root, after the descriptor."""
    graph = catalog_graph(root, descriptor, descriptor_bytes, sources, releases, about)
    (root / settings.CATALOG_TURTLE).write_bytes(catalog_turtle(graph))
    (root / settings.CATALOG_JSONLD).write_bytes(catalog_jsonld(graph))
    zenodo = json.dumps(zenodo_metadata(about, sources), indent=2, ensure_ascii=False) + "\n"
    (root / settings.ZENODO_FILE).write_bytes(zenodo.encode("utf-8"))
    (root / settings.FEED_FILE).write_bytes(releases_feed(releases, about))
