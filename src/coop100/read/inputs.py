"""Open records files so that no input can hang, exhaust or crash the build.

The readers (records.py for YAML, bulk.py for JSON Lines) call these before
parsing: a records file must be a regular file of bounded size, and a YAML file
may use no anchors, aliases or tags and nest only a few levels deep. Each check
raises InputProblem, which the reader turns into a `file:line:column` message.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# A hand-edited records file is a few kilobytes (the largest today is 6 KB; 256 KiB
# holds some 800 statements). A broken file is read again by PyYAML's pure-Python
# loader to explain it: 1 MiB with a mistake on its last line took 12.6 s on the
# loaded 2-core development machine, so the cap keeps that to a few seconds. Big
# archives come as JSON Lines.
YAML_MAX_BYTES = 256 << 10
# A bulk file is streamed a block at a time, so its size costs time, not memory.
# The statements file of the 10M-statement benchmark archive is 4.1 GB; 16 GiB
# leaves room for four times that (~1,000 s of build on a 2-core machine).
JSONL_MAX_BYTES = 16 << 30
# Records nest three deep (the file's mapping, a table's list, a record). Deeper
# values are reported by the model ("must be text"); past this depth the file is
# refused before PyYAML's recursive composer meets it.
YAML_MAX_DEPTH = 10
# A record has at most 20 fields. The model reports each unknown one with a
# suggestion (~0.2 ms each): a million keys on one line took almost four minutes
# and 1.7 GB, so a mapping with more keys than this is refused before that.
MAX_KEYS = 100
# The published integer columns are Int64 (tables.py): a whole number beyond
# these bounds cannot be published, and Python refuses to parse 4,300+ digits.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# JSON Lines files are scanned this many bytes at a time.
READ_BLOCK = 16 << 20

_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}
_SURROGATE = re.compile("[\ud800-\udfff]")
# Both formats must be UTF-8 without a byte-order mark.
BOM = b"\xef\xbb\xbf"
HAS_BOM = "starts with a byte-order mark; save as UTF-8 without BOM"
NOT_UTF8 = "is not UTF-8 text; save it as UTF-8"


class InputProblem(Exception):
    """A records file cannot be read as it stands; line and column are 1-based, 0 if unknown."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def _size_text(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size >> shift} {unit}"
    return f"{size:,} bytes"


def _open(path: Path) -> int:
    """Open path for reading without blocking (a FIFO would wait for a writer)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT and path.is_symlink():
            message = (
                f"is a symbolic link to {os.readlink(path)}, which does not exist; "
                "replace it with the file"
            )
        elif exc.errno == errno.ELOOP:
            message = "is a symbolic link that loops back on itself; replace it with the file"
        elif exc.errno == errno.ENXIO:
            message = "is a socket, not a file; replace it with the records file"
        elif exc.errno == errno.EACCES:
            message = "cannot be read: permission denied; make it readable (chmod a+r)"
        else:
            message = f"cannot be read: {exc.strerror or exc}"
        raise InputProblem(message) from None


def _check_opened(fd: int, limit: int, what: str) -> int:
    info = os.fstat(fd)
    kind = stat.S_IFMT(info.st_mode)
    if kind != stat.S_IFREG:
        raise InputProblem(
            f"is {_KINDS.get(kind, 'not a regular file')}, not a file; "
            "records must be plain files: replace it with the file itself"
        )
    if info.st_size > limit:
        raise InputProblem(too_big(info.st_size, limit, what))
    return info.st_size


def too_big(size: int, limit: int, what: str) -> str:
    """The message for a file past its size cap."""
    return f"is {size:,} bytes; {what} may hold at most {_size_text(limit)}" + (
        " (move big tables to records/bulk/<table>.jsonl)" if limit == YAML_MAX_BYTES else ""
    )


def read_capped(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most limit bytes.

    Raises:
        InputProblem: the path is no regular file, cannot be read, or is too big.
    """
    fd = _open(path)
    try:
        _check_opened(fd, limit, what)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew since fstat
                raise InputProblem(too_big(total, limit, what))
        return b"".join(chunks)
    except OSError as exc:
        raise InputProblem(f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def check_file(path: Path, limit: int, what: str) -> int:
    """The size of a regular file of at most limit bytes, for readers that open it by path.

    Raises:
        InputProblem: the path is no regular file, cannot be read, or is too big.
    """
    fd = _open(path)
    try:
        return _check_opened(fd, limit, what)
    finally:
        os.close(fd)


# -- JSON Lines -------------------------------------------------------------------


def line_pieces(path: Path, max_line: int) -> Iterator[tuple[memoryview, int]]:
    """The file in pieces of about 16 MiB that end at a line break (the last may not),
    each with its number of lines, checked as a JSON Lines file must be.

    Each piece is checked before it is given: no byte-order mark, UTF-8 (pyarrow's
    JSON reader neither checks it, publishing broken bytes as text, nor reads a
    line longer than its block), no line longer than max_line bytes, and not an
    empty file. So the file is read once: a scan of its own before the pieces cost
    ~0.7 s at 1M statements (the 409 MB statements file read and its lines
    counted twice).

    One buffer serves every piece, so a piece is valid only until the next is asked
    for: a fresh 16 MiB block for every piece left glibc's heap ~70 MB bigger at 1M
    statements, and handing them back cost ~2 s of page faults.

    Raises:
        InputProblem: the file is empty, starts with a byte-order mark, is not
            UTF-8, or holds a line longer than max_line bytes.
    """
    import pyarrow as pa  # the YAML-only path never needs it

    # What is carried over is at most a line (max_line) or a block's tail.
    buffer = bytearray(max(max_line, READ_BLOCK) + READ_BLOCK)
    view = memoryview(buffer)
    lines = carry = 0
    with path.open("rb", buffering=0) as handle:
        while read := handle.readinto(view[carry : carry + READ_BLOCK]):
            end = carry + read
            if lines == 0 and end >= len(BOM) and buffer.startswith(BOM):
                raise InputProblem(HAS_BOM, 1, 1)
            first = buffer.find(b"\n", carry, end)
            if (end if first < 0 else first) > max_line:
                raise InputProblem(_too_long(max_line), lines + 1, 1)
            cut = buffer.rfind(b"\n", 0, end) + 1
            if cut:
                _check_utf8(view[:cut], lines, pa)
                count = buffer.count(b"\n", 0, cut)
                yield view[:cut], count
                lines += count
                view[: end - cut] = view[cut:end]
            carry = end - cut
    if carry:
        _check_utf8(view[:carry], lines, pa)
        yield view[:carry], buffer.count(b"\n", 0, carry) + 1
    elif lines == 0:
        raise InputProblem("is empty; give one JSON object per line, or remove the file", 1, 1)


def scan_jsonl(path: Path, max_line: int) -> int:
    """Count the lines of a JSON Lines file, checked as `line_pieces` checks them.

    Raises:
        InputProblem: the file is empty, starts with a byte-order mark, is not
            UTF-8, or holds a line longer than max_line bytes.
    """
    return sum(lines for _, lines in line_pieces(path, max_line))


def _too_long(max_line: int) -> str:
    return (
        f"is a line longer than {_size_text(max_line)}; give one JSON object per line "
        "(a record is far shorter)"
    )


def _check_utf8(chunk: bytes | memoryview, lines_before: int, pa: Any) -> None:
    # Casting binary to text makes Arrow check the UTF-8 in C++ without a copy;
    # decode only to find where a broken file breaks.
    offsets = pa.py_buffer((0).to_bytes(8, "little") + len(chunk).to_bytes(8, "little"))
    binary = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(chunk)])
    try:
        binary.cast(pa.large_string())
        return
    except pa.ArrowInvalid:
        pass
    data = bytes(chunk)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise InputProblem(NOT_UTF8, line, column) from None


# -- YAML -------------------------------------------------------------------------

_NO_ANCHORS = "records use no YAML anchors or aliases: write the value out in full where it is used"


def check_yaml_structure(text: str, loader: type[Any]) -> None:
    """Refuse anchors, aliases, tags and deep nesting, streaming the parser's events.

    Anchors and aliases have no use in hand-edited records (each record should read
    on its own, and a diff should show every changed value), and an alias bomb
    expands a few hundred bytes into gigabytes: refusing them outright needs no
    budget to tune. A syntax error is left to the loader, which explains it; but
    first the pure-Python parser (a state machine, never recursive) reads the text
    again, since libyaml stops at its own nesting limit before telling us where.

    Raises:
        InputProblem: at the first anchor, alias, tag or level past YAML_MAX_DEPTH.
    """
    try:
        _check_events(text, loader)
    except yaml.YAMLError:
        if loader is not yaml.SafeLoader:
            check_yaml_structure(text, yaml.SafeLoader)


def _check_events(text: str, loader: type[Any]) -> None:
    depth = 0
    event: Any
    for event in yaml.parse(text, Loader=loader):
        where = (event.start_mark.line + 1, event.start_mark.column + 1)
        if isinstance(event, yaml.AliasEvent):
            raise InputProblem(f"uses the alias *{event.anchor}; {_NO_ANCHORS}", *where)
        if getattr(event, "anchor", None):
            raise InputProblem(f"uses the anchor &{event.anchor}; {_NO_ANCHORS}", *where)
        if getattr(event, "tag", None):
            tag = str(event.tag).replace("tag:yaml.org,2002:", "!!")
            raise InputProblem(f"uses the YAML tag {tag}; records use no tags: remove it", *where)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > YAML_MAX_DEPTH:
                raise InputProblem(
                    f"nests more than {YAML_MAX_DEPTH} levels deep; give each field a plain value",
                    *where,
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def too_many_keys(count: int) -> str | None:
    """Why a mapping (a YAML mapping or a JSON object) with count keys is refused."""
    if count <= MAX_KEYS:
        return None
    return f"holds {count:,} keys; a record has at most {MAX_KEYS} (and far fewer fields)"


def whole_number(text: str) -> int:
    """A whole number written in decimal, if the published Int64 columns can hold it.

    Raises:
        ValueError: it is out of range; the message says so.
    """
    digits = text.lstrip("+-")
    # Checked on the digits first: Python refuses to convert 4,300 or more.
    if len(digits) <= 19 and INT64_MIN <= int(text) <= INT64_MAX:
        return int(text)
    shown = text if len(text) <= 24 else f"{text[:12]}… ({len(digits):,} digits)"
    raise ValueError(
        f"the number {shown} is out of range: whole numbers lie between {INT64_MIN} and {INT64_MAX}"
    )


def surrogate_problem(text: str) -> str | None:
    """Why text holding half of a UTF-16 surrogate pair (from an escape like \\uD800) is refused."""
    found = None if text.isascii() else _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"holds the escape \\u{ord(found.group()):04X}, half of a surrogate pair and no "
        "character; write the character itself"
    )
