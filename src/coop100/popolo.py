"""The package as Popolo JSON: persons, organizations, memberships, events, speeches.

Popolo (https://www.popoloproject.com/) is the data model of people, organisations
and what they said that EveryPolitician, SayIt and django-popolo read. The mapping:

- persons from `people`, with every other spelling in `person_names` as `other_names`
  (each noting its source);
- organizations from `organisations`, with `parent_id`;
- memberships from `affiliations`, one per claim: rival claims about one fact share
  `claim_key` and exactly one is `preferred` (both are extension properties, which
  Popolo allows), and the `label` says which is which;
- events from `events`, with `parent_id` and the organiser as `organization_id`;
- speeches from `statements`: `creator_id` (the speaker), `event_id`, `position`
  (the statement's order within its event, from 1) and `type`.

Every object carries its `sources` (the source's address and label, and the S1
paragraph). Dates with a time are left out: the sources give no time zone, and
Popolo's times need one.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Popolo's pattern for a date (memberships also allow a time with its zone).
_DATE = re.compile(r"^[0-9]{4}(-[0-9]{2}){0,2}$")
_BATCH_ROWS = 65_536
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def write_popolo(tables: dict[str, pa.Table], path: Path) -> None:
    """Write the Popolo JSON document for the package's tables: one object a line.

    Streamed a batch of rows at a time, so a million statements never sit in
    memory as Python objects all at once.
    """
    collections: dict[str, Iterator[str]] = {
        name: map(_ENCODER.encode, items) for name, items in popolo(tables).items()
    }
    # A million speeches: their lines are put together in Arrow (same text, tested).
    collections["speeches"] = speech_lines(tables)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for number, (name, lines) in enumerate(collections.items()):
            out.write(("{" if number == 0 else ",\n") + json.dumps(name) + ": [")
            separator = "\n"
            for line in lines:
                out.write(separator + line)
                separator = ",\n"
            out.write("\n]")
        out.write("}\n")


def speech_lines(tables: dict[str, pa.Table]) -> Iterator[str]:
    """Each speech's JSON text, as `_ENCODER.encode` would write `popolo()`'s speeches.

    The columns are escaped with Arrow compute (the models keep control characters
    out of every text, so escaping `\\` and `"` is all JSON needs) and the lines put
    together with f-strings: a third of the time of encoding a dict per speech.
    """
    statements = tables["statements"]
    for column in ("statement_id", "event_id", "type", "text"):
        if statements[column].null_count:  # the models require them; encode if not
            yield from map(_ENCODER.encode, popolo(tables)["speeches"])
            return
    cite = _citer(tables)
    cited: dict[tuple[str | None, int | None], str] = {}
    positions = _positions(statements["event_id"])
    for start in range(0, statements.num_rows, _BATCH_ROWS):
        batch = statements.slice(start, _BATCH_ROWS)
        columns = [
            _escaped(batch[c]).to_pylist()
            for c in ("statement_id", "person_id", "event_id", "type", "text")
        ]
        rows = zip(
            *columns,
            positions.slice(start, _BATCH_ROWS).to_pylist(),
            batch["source_id"].to_pylist(),
            batch["paragraph"].to_pylist(),
            strict=True,
        )
        yield from _speech_batch(rows, cite, cited)


def _speech_batch(
    rows: Iterator[tuple[Any, ...]], cite: Cite, cited: dict[Any, str]
) -> Iterator[str]:
    for statement_id, person_id, event_id, kind, text, position, source_id, paragraph in rows:
        sources = cited.get((source_id, paragraph))
        if sources is None:
            found = cite(source_id, paragraph)
            sources = cited[(source_id, paragraph)] = (
                f',"sources":{_ENCODER.encode(found)}' if found else ""
            )
        creator = f',"creator_id":"{person_id}"' if person_id is not None else ""
        yield (
            f'{{"id":"{statement_id}"{creator},"event_id":"{event_id}","position":{position},'
            f'"type":"{kind}","text":"{text}"{sources}}}'
        )


def _escaped(values: Any) -> Any:
    if pc.any(pc.match_substring_regex(values, "[\\x00-\\x1f]")).as_py():
        raise ValueError("a text holds a control character, which the models refuse")
    values = pc.replace_substring(values, "\\", "\\\\")
    return pc.replace_substring(values, '"', '\\"')


def _positions(event_ids: Any) -> pa.Array:
    """Each row's place among its event's rows, from 1, in table order."""
    codes = pc.dictionary_encode(event_ids).combine_chunks().indices.to_numpy()
    order = np.argsort(codes, kind="stable")  # ties keep the table's order
    ordered = codes[order]
    index = np.arange(len(order))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    start = np.maximum.accumulate(np.where(first, index, 0))
    positions = np.empty(len(order), dtype=np.int64)
    positions[order] = index - start + 1
    return pc.cast(pa.array(positions), pa.string())


def popolo(tables: dict[str, pa.Table]) -> dict[str, Iterator[dict[str, Any]]]:
    """Popolo's five collections, each an iterator of objects in its table's row order."""
    sources = _sources(tables)
    cite = _citer(tables)
    return {
        "persons": _persons(tables, sources, cite),
        "organizations": _organizations(tables, cite),
        "memberships": _memberships(tables, cite),
        "events": _events(tables, cite),
        "speeches": _speeches(tables, cite),
    }


Cite = Callable[..., list[dict[str, str]]]


def _sources(tables: dict[str, pa.Table]) -> dict[str, tuple[str, str]]:
    return {
        source_id: (url, label)
        for source_id, url, label in _rows(tables["sources"], "source_id", "url", "label")
    }


def _citer(tables: dict[str, pa.Table]) -> Cite:
    """The `sources` list of a row: its source's address and label, and its paragraph."""
    sources = _sources(tables)

    def cite(source_id: str | None, paragraph: int | None = None) -> list[dict[str, str]]:
        url, label = sources.get(source_id or "", (None, None))
        if not url:
            return []  # a Popolo link needs an address
        note = f"{label}, paragraph {paragraph}" if paragraph is not None else str(label)
        return [{"url": url, "note": note}]

    return cite


def _rows(table: pa.Table, *columns: str) -> Iterator[tuple[Any, ...]]:
    for batch in table.select(list(columns)).to_batches(max_chunksize=_BATCH_ROWS):
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def _persons(
    tables: dict[str, pa.Table], sources: dict[str, tuple[str, str]], cite: Cite
) -> Iterator[dict[str, Any]]:
    spellings: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for person_id, name, source_id in _rows(
        tables["person_names"], "person_id", "name", "source_id"
    ):
        spellings[person_id].append((name, source_id))
    for person_id, name, sort_name, honorific, wikidata_id, source_id, paragraph in _rows(
        tables["people"],
        "person_id",
        "name",
        "sort_name",
        "honorific",
        "wikidata_id",
        "source_id",
        "paragraph",
    ):
        other: list[dict[str, str]] = []
        for spelling, spelled_by in spellings.pop(person_id, []):
            if spelling != name and all(o["name"] != spelling for o in other):
                label = sources.get(spelled_by, (None, spelled_by))[1]
                other.append({"name": spelling, "note": f"as {label} spells it"})
        yield _clean(
            {
                "id": person_id,
                "name": name,
                "sort_name": sort_name,
                "honorific_prefix": honorific,
                "other_names": other,
                "identifiers": _wikidata(wikidata_id),
                "sources": cite(source_id, paragraph),
            }
        )


def _organizations(tables: dict[str, pa.Table], cite: Cite) -> Iterator[dict[str, Any]]:
    for row in _rows(
        tables["organisations"],
        "organisation_id",
        "name",
        "short_name",
        "former_name",
        "type",
        "parent_organisation_id",
        "founded",
        "wikidata_id",
        "source_id",
        "paragraph",
    ):
        organisation_id, name, short, former, kind, parent, founded, wikidata_id = row[:8]
        aliases = [(short, "short name"), (former, "former name")]
        yield _clean(
            {
                "id": organisation_id,
                "name": name,
                "other_names": [{"name": a, "note": note} for a, note in aliases if a],
                "classification": kind,
                "parent_id": parent,
                "founding_date": _date(founded),
                "identifiers": _wikidata(wikidata_id),
                "sources": cite(*row[8:]),
            }
        )


def _memberships(tables: dict[str, pa.Table], cite: Cite) -> Iterator[dict[str, Any]]:
    for row in _rows(
        tables["affiliations"],
        "affiliation_id",
        "person_id",
        "organisation_id",
        "role",
        "start",
        "end",
        "claim_key",
        "preferred",
        "source_id",
        "paragraph",
    ):
        affiliation_id, person_id, organisation_id, role, start, end, claim, preferred = row[:8]
        standing = "preferred claim" if preferred else "rival claim, not preferred"
        yield _clean(
            {
                "id": affiliation_id,
                "label": f"{claim}: {standing}",
                "role": role,
                "person_id": person_id,
                "organization_id": organisation_id,
                "start_date": _date(start),
                "end_date": _date(end),
                "claim_key": claim,
                "preferred": preferred,
                "sources": cite(*row[8:]),
            }
        )


def _events(tables: dict[str, pa.Table], cite: Cite) -> Iterator[dict[str, Any]]:
    for row in _rows(
        tables["events"],
        "event_id",
        "name",
        "description",
        "type",
        "start_date",
        "end_date",
        "parent_event_id",
        "organiser_organisation_id",
        "source_id",
        "paragraph",
    ):
        event_id, name, description, kind, start, end, parent, organiser = row[:8]
        yield _clean(
            {
                "id": event_id,
                "name": name,
                "description": description,
                "classification": kind,
                "start_date": _date(start),
                "end_date": _date(end),
                "parent_id": parent,
                "organization_id": organiser,
                "sources": cite(*row[8:]),
            }
        )


def _speeches(tables: dict[str, pa.Table], cite: Cite) -> Iterator[dict[str, Any]]:
    positions: dict[str, int] = defaultdict(int)
    for statement_id, person_id, event_id, kind, text, source_id, paragraph in _rows(
        tables["statements"],
        "statement_id",
        "person_id",
        "event_id",
        "type",
        "text",
        "source_id",
        "paragraph",
    ):
        positions[event_id] += 1
        yield _clean(
            {
                "id": statement_id,
                "creator_id": person_id,
                "event_id": event_id,
                "position": positions[event_id],
                "type": kind,
                "text": text,
                "sources": cite(source_id, paragraph),
            }
        )


def _wikidata(found: str | None) -> list[dict[str, str]]:
    return [{"scheme": "wikidata", "identifier": found}] if found else []


def _date(value: Any) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text if _DATE.match(text) else None


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value not in (None, "", [])}


class PopoloWriter:
    """Writes the Popolo document from tables fed a batch at a time (whole, for now)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.batches: dict[str, list[pa.Table]] = defaultdict(list)

    def add(self, table: str, batch: pa.Table) -> None:
        self.batches[table].append(batch)

    def close(self) -> None:
        from .models import MODELS
        from .tables import arrow_schema

        tables = {
            m.table: pa.concat_tables(self.batches[m.table])
            if self.batches[m.table]
            else arrow_schema(m).empty_table()
            for m in MODELS
        }
        write_popolo(tables, self.path)
