"""The package's files that are not tables: release notes, citation, Popolo export.

Each is written from the records' tables and releases by the build, published
beside the CSV and Parquet and described in datapackage.json (after the
tables), so the drift check, the checksums and the zip cover them too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from coop100 import settings
from coop100.rules.models import About, Source
from coop100.versions.release import Release, changes_markdown
from coop100.write.codebook import CodebookWriter
from coop100.write.diagram import diagram_svg
from coop100.write.digest import file_digest
from coop100.write.popolo import PopoloWriter


@dataclass(frozen=True)
class Document:
    """One published file that is not a table, and how it is written."""

    name: str  # the resource name in datapackage.json
    path: str
    title: str
    description: str
    format: str
    mediatype: str
    # Opens the document at a path for a release history, the package's words and its
    # sources; the build then feeds it every table a batch at a time and closes it.
    open: Callable[[Path, list[Release], About, list[Source]], DocumentFeed]


class Feed(Protocol):
    """Something written from the tables, fed a batch at a time, then closed."""

    def add(self, table: str, batch: pa.Table) -> None: ...

    def close(self) -> None: ...


class DocumentFeed(Feed, Protocol):
    """A document being written from the tables."""

    # The file it appends to while fed (renamed into place on close), if any.
    appending: Path | None


class _Text:
    """A document that needs the releases only, written when closed."""

    def __init__(
        self,
        render: Callable[[list[Release], About, list[Source]], str],
        path: Path,
        releases: list[Release],
        about: About,
        sources: list[Source],
    ):
        self.render, self.path = render, path
        self.releases, self.about, self.sources = releases, about, sources
        self.appending: Path | None = None  # written at once, on close

    def add(self, table: str, batch: pa.Table) -> None:
        pass

    def close(self) -> None:
        text = self.render(self.releases, self.about, self.sources)
        self.path.write_bytes(text.encode("utf-8"))


def _text(
    render: Callable[[list[Release], About, list[Source]], str],
) -> Callable[[Path, list[Release], About, list[Source]], DocumentFeed]:
    return lambda path, releases, about, sources: _Text(render, path, releases, about, sources)


CITATION_MESSAGE = "If you use this data, please cite it as below."


def citation_cff(release: Release, about: About, sources: list[Source]) -> str:
    """CITATION.cff (Citation File Format 1.2.0, type dataset) for this release.

    The sources are its references; the DOI appears once package.yaml names one.
    """
    authors = [c.title for c in about.contributors if "creator" in c.roles]

    def text(value: str) -> str:
        # A JSON string is a YAML double-quoted scalar: no escaping rules of our own.
        return json.dumps(value, ensure_ascii=False)

    lines = [
        "# Written by `coop100 build` from records/releases.json and package.yaml; do not edit.",
        "cff-version: 1.2.0",
        f"message: {text(CITATION_MESSAGE + ' ' + about.credit)}",
        "type: dataset",
        f"title: {text(about.title)}",
        f"abstract: {text(about.description)}",
        "authors:",
        *(f"  - name: {text(name)}" for name in authors),
        f"version: {text(release.version)}",
        f"date-released: {text(release.released)}",
        *([f"doi: {text(about.doi)}"] if about.doi else []),
        f"url: {text(about.homepage)}",
        f"repository-code: {text(about.repository)}",
        f"license: {text(about.licenses[0].name)}",
        "keywords:",
        *(f"  - {text(word)}" for word in about.keywords),
    ]
    if about.contact is not None:
        lines += ["contact:", f"  - name: {text(about.contact.name)}"]
        if about.contact.url:
            lines.append(f"    website: {text(about.contact.url)}")
        if about.contact.email:
            lines.append(f"    email: {text(about.contact.email)}")
    if sources:
        lines.append("references:")
    for source in sources:
        lines += [
            "  - type: website",  # every source is a web page (CFF has no finer type for one)
            f"    title: {text(f'{source.label}: {source.title}')}",
            "    authors:",
            f"      - name: {text(source.publisher)}",
            *([f"    url: {text(source.url)}"] if source.url else []),
            *([f"    date-published: {text(str(source.published))}"] if source.published else []),
            f"    languages: [{text(source.language)}]",
        ]
    return "\n".join(lines) + "\n"


def _popolo(
    path: Path, releases: list[Release], about: About, sources: list[Source]
) -> DocumentFeed:
    return PopoloWriter(path)


def _codebook(
    path: Path, releases: list[Release], about: About, sources: list[Source]
) -> DocumentFeed:
    return CodebookWriter(path, about.title)


def _diagram(releases: list[Release], about: About, sources: list[Source]) -> str:
    return diagram_svg()


DOCUMENTS: tuple[Document, ...] = (
    Document(
        settings.CHANGES_RESOURCE,
        settings.CHANGES_FILE,
        "Release notes",
        "What changed in each version, row by row, and why its version number is what it"
        " is (newest first).",
        "md",
        "text/markdown",
        _text(lambda releases, about, sources: changes_markdown(releases, about)),
    ),
    Document(
        settings.CITATION_RESOURCE,
        settings.CITATION_FILE,
        "How to cite this package",
        "Citation File Format (CFF 1.2.0) metadata: title, authors, version, release date"
        " and licence of this release.",
        "cff",
        "application/x-yaml",
        _text(lambda releases, about, sources: citation_cff(releases[0], about, sources)),
    ),
    Document(
        settings.POPOLO_RESOURCE,
        settings.POPOLO_FILE,
        "The tables as Popolo JSON",
        "Persons (with their other spellings), organizations, memberships (one per claim;"
        " rival claims share claim_key, one is preferred), events and speeches, in the"
        " Popolo data model (https://www.popoloproject.com/) that EveryPolitician, SayIt"
        " and django-popolo read.",
        "json",
        "application/json",
        _popolo,
    ),
    Document(
        settings.CODEBOOK_RESOURCE,
        settings.CODEBOOK_FILE,
        "Codebook",
        "Every table and field: its type, what its values must be, its categories, its"
        " description and an example from the data; the keys, and what each foreign key"
        " joins to.",
        "md",
        "text/markdown",
        _codebook,
    ),
    Document(
        settings.DIAGRAM_RESOURCE,
        settings.DIAGRAM_FILE,
        "Diagram of the tables and their keys",
        "Each table's primary and foreign keys, a line from each foreign key to the key it"
        " joins to (SVG).",
        "svg",
        "image/svg+xml",
        _text(_diagram),
    ),
)


def open_documents(
    root: Path, releases: list[Release], about: About, sources: list[Source]
) -> list[DocumentFeed]:
    """Open every document under root, to be fed the tables and closed."""
    feeds = []
    for document in DOCUMENTS:
        (root / document.path).parent.mkdir(parents=True, exist_ok=True)
        feeds.append(document.open(root / document.path, releases, about, sources))
    return feeds


def document_resources(root: Path) -> list[dict[str, Any]]:
    """The documents' entries in datapackage.json, with the written files' sizes and hashes."""
    resources = []
    for document in DOCUMENTS:
        size, sha256 = file_digest(root / document.path)
        resources.append(
            {
                "name": document.name,
                "title": document.title,
                "description": document.description,
                "path": document.path,
                "format": document.format,
                "mediatype": document.mediatype,
                "encoding": "utf-8",
                "bytes": size,
                "hash": f"sha256:{sha256}",
            }
        )
    return resources


def document_paths() -> list[str]:
    return [document.path for document in DOCUMENTS]
