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

Every object carries its `sources` (the source's address and label, and the
paragraph). Dates with a time are left out: the sources give no time zone, and
Popolo's times need one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coop100.rules.models import MODELS

# Popolo's pattern for a date (memberships also allow a time with its zone).
_DATE = re.compile(r"^[0-9]{4}(-[0-9]{2}){0,2}$")
_BATCH_ROWS = 65_536
_WRITE_LINES = 512
_PYTHON_ROWS = 4_096  # rows turned into Python objects at once
# Rows put together as JSON in Arrow at once: at most ~9 KB a speech (MAX_TEXT).
_ARROW_ROWS = 8_192
_SEPARATOR = ",\n"  # between two lines of a collection
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# The document's collections in the order it lists them, and the tables of each.
COLLECTIONS = {
    "persons": ("people", "person_names"),
    "organizations": ("organisations",),
    "memberships": ("affiliations",),
    "events": ("events",),
    "speeches": ("statements",),
}
_TABLE_ORDER = [model.table for model in MODELS]
_PEOPLE = ("person_id", "name", "sort_name", "honorific", "wikidata_id", "source_id", "paragraph")
_NAMES = ("person_id", "name", "source_id")

Cite = Callable[..., list[dict[str, str]]]
Batch: TypeAlias = "pa.Table | pa.RecordBatch"


def write_popolo(tables: dict[str, pa.Table], path: Path) -> None:
    """Write the Popolo JSON document for the package's tables: one object a line."""
    with PopoloWriter(path) as writer:
        for table in _TABLE_ORDER:
            if table in tables:
                for batch in tables[table].to_batches(max_chunksize=_BATCH_ROWS):
                    writer.add(table, batch)


class PopoloWriter:
    """Writes the Popolo JSON document from tables fed a batch at a time.

    Feed it every table of the package with `add(table, batch)`: tables one after
    another in `MODELS` order (sources first), each table's batches in row order,
    in the published Arrow schema. Tables Popolo does not use are ignored.
    `close()` puts the document at `path` in one step (it is written to a temporary
    file beside `path`, then renamed); used as a context manager, an exception
    leaves `path` as it was. Its temporary files are removed in every case.

    A collection is written straight into the document once every collection
    before it is finished, and to a part file of its own until then (in `MODELS`
    order only organizations wait, for the persons). Persons need people's other
    spellings (person_names), which arrive after people: both are spilled to Arrow
    IPC files and the persons written when person_names ends.

    What memory grows with the archive: the sources (a handful); a position counter
    per event (~380k events at 10M statements: ~40 MB); the `sources` text of each
    (source, paragraph) speeches cite; and, while the persons are written, each
    spelling's person and their stable order (12 bytes a spelling, 8 a person) after
    one hash lookup of person_names' ids among people's (~80 MB at 1M people, handed
    back at once). The spills are memory-mapped. Everything else is a batch (at most
    65,536 rows in Arrow, 4,096 as Python objects) at a time. Measured at 10M
    statements, input memory-mapped: 172 MB anonymous memory at the peak, 38 MB of
    it the interpreter and imports.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._temps: list[Path] = []
        # Removes the temporary files even if the writer is dropped unclosed.
        self._cleanup = weakref.finalize(self, _remove, self._temps)
        self._document = self._open("document")
        # The file the document is appended to, never rewritten, until close renames it.
        self.appending: Path | None = Path(self._document.name)
        self._parts: dict[str, IO[bytes]] = {}
        self._written = dict.fromkeys(COLLECTIONS, 0)
        self._frontier = 0  # the collection written straight into the document
        self._done: set[str] = set()  # tables that have ended
        self._spills: dict[str, tuple[Path, pa.ipc.RecordBatchFileWriter]] = {}
        self._table: str | None = None
        self._sources: dict[str, tuple[str, str]] = {}
        self._cite = _citer(self._sources)
        self._speeches = _Speeches(self._cite)
        self._cited: dict[tuple[str | None, int | None], str] = {}  # memberships' sources
        self._closed = False
        self._document.write(b"{" + _header("persons"))

    def __enter__(self) -> PopoloWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def add(self, table: str, batch: Batch) -> None:
        """Take the next batch of rows of `table` (in the published Arrow schema)."""
        if self._closed:
            raise ValueError(f"{self.path}: the Popolo writer is closed")
        if table not in _TABLE_ORDER:
            raise ValueError(f"{table!r} is not a table of the package")
        if table in self._done:
            raise ValueError(
                f"Popolo: {table!r} rows came after {self._table!r} rows; feed the tables"
                " one after another in MODELS order"
            )
        self._end_tables_before(table)
        self._table = table
        batches = batch.to_batches(_BATCH_ROWS) if isinstance(batch, pa.Table) else [batch]
        for part in batches:
            for start in range(0, part.num_rows, _BATCH_ROWS):
                self._add(table, part.slice(start, _BATCH_ROWS))

    def _add(self, table: str, batch: pa.RecordBatch) -> None:
        if table == "sources":
            for source_id, url, label in _rows(batch, "source_id", "url", "label"):
                self._sources[source_id] = (url, label)
        elif table == "people":
            self._spill(table, batch.select(list(_PEOPLE)))
        elif table == "person_names":
            self._spill(table, batch.select(list(_NAMES)))
        elif table == "organisations":
            self._emit("organizations", map(_ENCODER.encode, _organizations(batch, self._cite)))
        elif table == "affiliations":
            self._emit("memberships", membership_lines(batch, self._cite, self._cited))
        elif table == "events":
            self._emit("events", map(_ENCODER.encode, _events(batch, self._cite)))
        elif table == "statements":
            self._emit("speeches", self._speeches.lines(batch))

    def close(self) -> None:
        """Finish the document, put it at `path` and remove the temporary files."""
        if self._closed:
            return
        try:
            self._end_tables_before(None)
            self._document.write(b"}\n")
            self._document.close()
            os.replace(self._document.name, self.path)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop what was written: remove the temporary files, leave `path` alone."""
        self._closed = True
        for file in [self._document, *self._parts.values()]:
            file.close()
        for _, writer in self._spills.values():
            writer.close()
        self._cleanup()

    def _end_tables_before(self, table: str | None) -> None:
        """Every table before `table` (all of them if None) has ended: move on."""
        for ended in _TABLE_ORDER[: _TABLE_ORDER.index(table) if table else None]:
            if ended not in self._done:
                self._done.add(ended)
                if ended == "person_names":
                    self._emit_persons()
        names = list(COLLECTIONS)
        while self._frontier < len(names) and self._done.issuperset(
            COLLECTIONS[names[self._frontier]]
        ):
            self._document.write(b"\n]")
            self._frontier += 1
            if self._frontier < len(names):
                name = names[self._frontier]
                self._document.write(b",\n" + _header(name))
                if name in self._parts:
                    _append(self._document, self._parts.pop(name))

    def _open(self, kind: str) -> IO[bytes]:
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.{kind}")
        self._temps.append(temp)
        return temp.open("xb+")

    def _emit(self, name: str, lines: Iterable[str | pa.Array]) -> None:
        """Append lines to a collection: each on its own line, comma-separated.

        lines: each a line's text, or an Arrow array of lines each led by its
        separator (`_led`), written from Arrow's buffer as they are.
        """
        if name == list(COLLECTIONS)[self._frontier]:
            out = self._document
        elif name in self._parts:
            out = self._parts[name]
        else:
            out = self._parts[name] = self._open("part-" + name)
        chunk: list[str] = []
        for line in lines:
            if isinstance(line, str):
                chunk.append(line)
                # A few hundred lines a write: whole batches would miss the CPU's cache.
                if len(chunk) == _WRITE_LINES:
                    self._write(out, name, chunk)
                    chunk = []
                continue
            self._write(out, name, chunk)
            chunk = []
            if len(line):
                ends = _ends(line)
                # The collection's first line has only the newline before it.
                start = int(ends[0]) + (0 if self._written[name] else len(_SEPARATOR) - 1)
                out.write(memoryview(line.buffers()[2])[start : int(ends[-1])])
                self._written[name] += len(line)
        self._write(out, name, chunk)

    def _write(self, out: IO[bytes], name: str, lines: list[str]) -> None:
        if lines:
            separator = _SEPARATOR if self._written[name] else "\n"
            out.write((separator + _SEPARATOR.join(lines)).encode("utf-8"))
            self._written[name] += len(lines)

    def _spill(self, table: str, batch: pa.RecordBatch) -> None:
        # Names and types only: batches differing in metadata or nullability still fit.
        schema = pa.schema([(field.name, field.type) for field in batch.schema])
        if table not in self._spills:
            path = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.{table}")
            self._temps.append(path)
            self._spills[table] = (path, pa.ipc.new_file(str(path), schema))
        self._spills[table][1].write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))

    def _spilled(self, table: str, columns: tuple[str, ...]) -> pa.Table:
        """A spilled table, memory-mapped (an empty one if no rows came)."""
        if table not in self._spills:
            return pa.table({c: pa.array([], pa.string()) for c in columns})
        path, writer = self._spills[table]
        writer.close()
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()

    def _emit_persons(self) -> None:
        people = self._spilled("people", _PEOPLE)
        spellings = _Spellings(self._spilled("person_names", _NAMES), people["person_id"])
        start = 0
        for batch in people.to_batches(max_chunksize=_PYTHON_ROWS):
            grouped = spellings.rows(start, start + batch.num_rows)
            start += batch.num_rows
            persons = (
                _person(row, spelled, self._sources, self._cite)
                for row, spelled in zip(_rows(batch, *_PEOPLE), grouped, strict=True)
            )
            self._emit("persons", map(_ENCODER.encode, persons))
        del people, spellings
        for path, _ in self._spills.values():
            path.unlink()  # the spills are done with (and closed): free the disk now
        self._spills.clear()
        pa.default_memory_pool().release_unused()


def _header(name: str) -> bytes:
    return (json.dumps(name) + ": [").encode("utf-8")


class _Spellings:
    """person_names grouped by person, in their row order, for people's rows."""

    def __init__(self, names: pa.Table, people: pa.ChunkedArray) -> None:
        self._names = names.select(["name", "source_id"])
        # Each spelling's person as a row of people (-1 for nobody there).
        found = pc.index_in(names["person_id"], value_set=people.combine_chunks())
        person = found.fill_null(-1).to_numpy()
        del found
        pa.default_memory_pool().release_unused()  # the lookup's hash table (~80 MB at 1M)
        # A stable sort keeps each person's spellings in their row order; person p's
        # are then self._order[self._starts[p] : self._starts[p + 1]].
        self._order = np.argsort(person, kind="stable")
        self._starts = np.searchsorted(person[self._order], np.arange(len(people) + 1))

    def rows(self, start: int, end: int) -> Iterator[list[tuple[str, str]]]:
        """The spellings of people's rows start to end, each as (name, source_id)."""
        starts = self._starts[start : end + 1]
        taken = self._names.take(pa.array(self._order[starts[0] : starts[-1]]))
        names = taken["name"].to_pylist()
        sources = taken["source_id"].to_pylist()
        at = 0
        for length in np.diff(starts).tolist():
            yield list(zip(names[at : at + length], sources[at : at + length], strict=True))
            at += length


def _append(out: IO[bytes], part: IO[bytes]) -> None:
    """Append the whole of part to out, copied by the kernel, and close part."""
    part.flush()
    out.flush()
    size = os.fstat(part.fileno()).st_size
    offset = 0
    while offset < size:
        offset += os.sendfile(out.fileno(), part.fileno(), offset, size - offset)
    out.seek(0, os.SEEK_END)
    part.close()


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


class _Speeches:
    """Speeches' JSON lines, a batch at a time, numbering each event's speeches from 1."""

    def __init__(self, cite: Cite) -> None:
        self.cite = cite
        self.cited: dict[tuple[str | None, int | None], str] = {}
        self.positions: dict[str | None, int] = defaultdict(int)

    def lines(self, batch: Batch) -> Iterator[str | pa.Array]:
        """The batch's speeches: Arrow arrays of lines led by their separator (`_led`)."""
        for column in ("statement_id", "event_id", "type", "text"):
            if batch[column].null_count:  # the models require them; encode if not
                yield from map(_ENCODER.encode, _speeches(batch, self.cite, self.positions))
                return
        positions = self._positions(batch["event_id"])
        for start in range(0, batch.num_rows, _ARROW_ROWS):
            rows = batch.slice(start, _ARROW_ROWS)
            sid, pid, eid, kind, text = (
                _escaped(rows[c]) for c in ("statement_id", "person_id", "event_id", "type", "text")
            )
            creator = pc.binary_join_element_wise(',"creator_id":"', pid, '"', "")
            yield _led(
                '{"id":"',
                sid,
                '"',
                creator.fill_null(""),
                ',"event_id":"',
                eid,
                '","position":',
                positions.slice(start, _ARROW_ROWS),
                ',"type":"',
                kind,
                '","text":"',
                text,
                '"',
                _cited(rows, self.cite, self.cited, ',"sources":'),
                "}",
            )

    def _positions(self, event_ids: Any) -> pa.Array:
        """Each row's place among its event's rows so far, from 1, in row order."""
        encoded = _whole(pc.dictionary_encode(event_ids))
        codes = encoded.indices.to_numpy()
        events = encoded.dictionary.to_pylist()
        before = np.array([self.positions[e] for e in events], dtype=np.int64)
        counts = np.bincount(codes, minlength=len(events))
        for event, count in zip(events, counts.tolist(), strict=True):
            self.positions[event] += count
        return pc.cast(pa.array(before[codes] + _ranks(codes)), pa.string())


def speech_lines(tables: dict[str, pa.Table]) -> Iterator[str]:
    """Each speech's JSON text, as `_ENCODER.encode` would write `popolo()`'s speeches.

    The columns are escaped with Arrow compute (the models keep control characters
    out of every text, so escaping `\\` and `"` is all JSON needs) and the lines
    joined in Arrow too (`_led`); the writer writes them from Arrow's buffer. At a
    million statements ~1 CPU s, against ~2 s for lines put together with f-strings
    and ~6 s for encoding a dict per speech.
    """
    speeches = _Speeches(_citer(_sources(tables["sources"])))
    for batch in tables["statements"].to_batches(max_chunksize=_BATCH_ROWS):
        yield from _texts(speeches.lines(batch))


def _texts(lines: Iterable[str | pa.Array]) -> Iterator[str]:
    """Each line's text, as `PopoloWriter._emit` writes it (without its separator)."""
    for line in lines:
        if isinstance(line, str):
            yield line
        else:
            yield from (led[len(_SEPARATOR) :] for led in line.to_pylist())


def _whole(values: Any) -> Any:
    """One Arrow array: a chunked one's chunks combined."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _led(*pieces: str | pa.Array) -> pa.Array:
    """Lines joined from texts and columns, each led by its separator (",\\n")."""
    return _whole(pc.binary_join_element_wise(_SEPARATOR, *pieces, ""))


def _cited(rows: Batch, cite: Cite, cited: dict[Any, str], key: str) -> pa.Array:
    """Each row's `sources` as `key` and its JSON text, or '' where it has none.

    Asked once of each (source, paragraph) the rows hold, kept in cited.
    """
    sources, paragraphs = (
        _whole(pc.dictionary_encode(rows[c])) for c in ("source_id", "paragraph")
    )
    known = [sources.dictionary.to_pylist() + [None], paragraphs.dictionary.to_pylist() + [None]]
    # A code per row for its (source, paragraph): missing ones are the last code of each.
    width = len(known[1])
    codes = sources.indices.fill_null(len(known[0]) - 1).to_numpy().astype(np.int64) * width
    codes += paragraphs.indices.fill_null(width - 1).to_numpy()
    pairs, each = np.unique(codes, return_inverse=True)
    texts = []
    for code in pairs.tolist():
        pair = (known[0][code // width], known[1][code % width])
        if pair not in cited:
            found = cite(*pair)
            cited[pair] = f"{key}{_ENCODER.encode(found)}" if found else ""
        texts.append(cited[pair])
    return pa.array(texts, pa.string()).take(pa.array(each))


_MEMBERSHIP_TEXTS = ("affiliation_id", "person_id", "organisation_id", "role", "claim_key")


def membership_lines(batch: Batch, cite: Cite, cited: dict[Any, str]) -> Iterator[str | pa.Array]:
    """Each membership's JSON text, as `_ENCODER.encode` writes `_memberships`' objects.

    Put together in Arrow from escaped columns, as the speeches are: Arrow arrays
    of lines led by their separator (`_led`). A batch whose texts hold a control
    character (the models refuse them) is encoded object by object.
    cited: each (source, paragraph)'s `sources` text, filled as they come.
    """
    if any(_has_control(batch[c]) for c in (*_MEMBERSHIP_TEXTS, "start", "end")):
        yield from map(_ENCODER.encode, _memberships(batch, cite))
        return
    for start in range(0, batch.num_rows, _ARROW_ROWS):
        rows = batch.slice(start, _ARROW_ROWS)
        aid, pid, oid, role, claim = (_escape(rows[c]) for c in _MEMBERSHIP_TEXTS)
        preferred = rows["preferred"]
        standing = pc.if_else(
            pc.fill_null(preferred, False), "preferred claim", "rival claim, not preferred"
        )
        sources = _cited(rows, cite, cited, '"sources":')
        fields = [
            _field("id", aid),
            # A missing claim as `_memberships` writes it: None.
            pc.binary_join_element_wise(
                '"label":"', claim.fill_null("None"), ": ", standing, '"', ""
            ),
            _field("role", role),
            _field("person_id", pid),
            _field("organization_id", oid),
            _field("start_date", _dates(rows["start"])),
            _field("end_date", _dates(rows["end"])),
            _field("claim_key", claim),
            pc.if_else(preferred, '"preferred":true', '"preferred":false'),
            pc.if_else(pc.equal(sources, ""), pa.scalar(None, pa.string()), sources),
        ]
        joined = pc.binary_join_element_wise(*fields, ",", null_handling="skip")
        yield _led("{", joined, "}")


def _field(key: str, values: Any) -> Any:
    """`"key":"value"` where the value is a text that is not empty; null elsewhere."""
    present = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    return pc.binary_join_element_wise(f'"{key}":"', present, '"', "")


def _dates(values: Any) -> Any:
    """`_date` of each value of a text column: the Popolo dates, others null."""
    valid = pc.match_substring_regex(values, _DATE.pattern)
    return pc.if_else(valid, values, pa.scalar(None, pa.string()))


def _has_control(values: Any) -> bool:
    """Whether a text holds a control character (U+0000-U+001F), which JSON must escape."""
    # Printable ASCII holds none: found in a third of the time the search takes.
    if pc.all(pc.ascii_is_printable(values)).as_py():
        return False
    return bool(pc.any(pc.match_substring_regex(values, "[\\x00-\\x1f]")).as_py())


def _escaped(values: Any) -> Any:
    if _has_control(values):
        raise ValueError("a text holds a control character, which the models refuse")
    return _escape(values)


def _escape(values: Any) -> Any:
    """JSON's escapes of texts with no control character: `\\` and `"` only.

    Only the rows that hold one are rewritten: Arrow's replace_substring copies
    every text it is given, ~1.5 s for a million statements that need none.
    """
    values = _whole(values)
    rows = _rows_holding(values, (b"\\", b'"'))
    if not len(rows):
        return values
    if len(rows) * 4 > len(values):  # taking and putting back would cost more
        return _escape_all(values)
    picked = _escape_all(values.take(pa.array(rows)))
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), picked)


def _escape_all(values: Any) -> Any:
    return pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')


def _ends(values: pa.Array) -> Any:
    """Where each text of the array starts in its data buffer, and where the last ends."""
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], width)
    return offsets[values.offset : values.offset + len(values) + 1]


def _rows_holding(values: pa.Array, needles: tuple[bytes, ...]) -> Any:
    """The rows of a text array whose text holds any of needles (bytes), in order.

    Searched in the array's bytes at once (bytes.find), not text by text; past a
    row found, the search goes on from the next row, so it takes at most one step
    a row however often a text holds them.
    """
    data = values.buffers()[2]
    if data is None or not len(values):
        return np.array([], dtype=np.int64)
    ends = _ends(values)
    starts = ends - ends[0]
    text = memoryview(data)[int(ends[0]) : int(ends[-1])].tobytes()
    upcoming = {needle: text.find(needle) for needle in needles}
    rows = []
    while live := [at for at in upcoming.values() if at >= 0]:
        row = int(np.searchsorted(starts, min(live), side="right")) - 1
        rows.append(row)
        past = int(starts[row + 1])
        for needle, at in upcoming.items():
            if 0 <= at < past:
                upcoming[needle] = text.find(needle, past)
    return np.array(rows, dtype=np.int64)


def _ranks(codes: Any) -> Any:
    """Each row's place among the rows of its code, from 1, in row order."""
    order = np.argsort(codes, kind="stable")  # ties keep the rows' order
    ordered = codes[order]
    index = np.arange(len(order))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    start = np.maximum.accumulate(np.where(first, index, 0))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = index - start + 1
    return ranks


def popolo(tables: dict[str, pa.Table]) -> dict[str, Iterator[dict[str, Any]]]:
    """Popolo's five collections, each an iterator of objects in its table's row order.

    Objects as Python dicts, whole tables at a time: the reference the tests hold
    `PopoloWriter`'s streamed text to.
    """
    sources = _sources(tables["sources"])
    cite = _citer(sources)
    return {
        "persons": _persons(tables, sources, cite),
        "organizations": _organizations(tables["organisations"], cite),
        "memberships": _memberships(tables["affiliations"], cite),
        "events": _events(tables["events"], cite),
        "speeches": _speeches(tables["statements"], cite, defaultdict(int)),
    }


def _sources(table: Batch) -> dict[str, tuple[str, str]]:
    return {
        source_id: (url, label)
        for source_id, url, label in _rows(table, "source_id", "url", "label")
    }


def _citer(sources: dict[str, tuple[str, str]]) -> Cite:
    """The `sources` list of a row: its source's address and label, and its paragraph."""

    def cite(source_id: str | None, paragraph: int | None = None) -> list[dict[str, str]]:
        url, label = sources.get(source_id or "", (None, None))
        if not url:
            return []  # a Popolo link needs an address
        note = f"{label}, paragraph {paragraph}" if paragraph is not None else str(label)
        return [{"url": url, "note": note}]

    return cite


def _rows(table: Batch, *columns: str) -> Iterator[tuple[Any, ...]]:
    """The rows' values as Python tuples, a few thousand rows' objects at a time."""
    selected = table.select(list(columns))
    for start in range(0, selected.num_rows, _PYTHON_ROWS):
        rows = selected.slice(start, _PYTHON_ROWS)
        yield from zip(*(column.to_pylist() for column in rows.columns), strict=True)


def _persons(
    tables: dict[str, pa.Table], sources: dict[str, tuple[str, str]], cite: Cite
) -> Iterator[dict[str, Any]]:
    spellings: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for person_id, name, source_id in _rows(tables["person_names"], *_NAMES):
        spellings[person_id].append((name, source_id))
    for row in _rows(tables["people"], *_PEOPLE):
        yield _person(row, spellings.pop(row[0], []), sources, cite)


def _person(
    row: tuple[Any, ...],
    spellings: list[tuple[str, str]],
    sources: dict[str, tuple[str, str]],
    cite: Cite,
) -> dict[str, Any]:
    """A person from a row of people and its spellings, (name, source_id) in row order."""
    person_id, name, sort_name, honorific, wikidata_id, source_id, paragraph = row
    other: list[dict[str, str]] = []
    for spelling, spelled_by in spellings:
        if spelling != name and all(o["name"] != spelling for o in other):
            label = sources.get(spelled_by, (None, spelled_by))[1]
            other.append({"name": spelling, "note": f"as {label} spells it"})
    return _clean(
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


def _organizations(table: Batch, cite: Cite) -> Iterator[dict[str, Any]]:
    for row in _rows(
        table,
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


def _memberships(table: Batch, cite: Cite) -> Iterator[dict[str, Any]]:
    for row in _rows(
        table,
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


def _events(table: Batch, cite: Cite) -> Iterator[dict[str, Any]]:
    for row in _rows(
        table,
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


def _speeches(
    table: Batch, cite: Cite, positions: dict[str | None, int]
) -> Iterator[dict[str, Any]]:
    """Speeches as dicts; positions counts each event's speeches so far (updated)."""
    for statement_id, person_id, event_id, kind, text, source_id, paragraph in _rows(
        table,
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
