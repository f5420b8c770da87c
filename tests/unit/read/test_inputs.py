"""Records files that are no plain text file end the real `coop100 build` with one clear line.

tests/bad_records/ covers what a file can say; these cases are what a file can be
(a FIFO, a device, a folder, a socket, a link, too big), which a YAML case cannot
express. Each runs the real command in a subprocess: a FIFO once hung the build
for good and /dev/zero filled its memory, so a generous timeout is part of the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coop100.read import inputs
from coop100.read.bulk import BLOCK_SIZE, read_bulk
from coop100.rules.models import MODEL_BY_TABLE, Role
from tests.conftest import RECORDS

# End to end (real processes, servers, browsers): `make test-all` and CI run it.
pytestmark = pytest.mark.slow

PLAIN = "records must be plain files: replace it with the file itself"
BULK_LINE = (
    '{"participation_id": "bulk-extra", "person_id": "simel-esim", '
    '"event_id": "ilo-coop-100-launch-webinar", "role": "speaker", '
    '"speaking_order": 9, "source_id": "s2"}\n'
)


def _replace(rel: str, make: Callable[[Path], object]) -> Callable[[Path], None]:
    def change(records: Path) -> None:
        path = records / rel
        path.parent.mkdir(exist_ok=True)
        path.unlink(missing_ok=True)
        make(path)

    return change


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the socket file stays


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(size)

    return make


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo-yaml": (
        _replace("topics.yaml", os.mkfifo),
        f"is a named pipe (FIFO), not a file; {PLAIN}",
    ),
    "fifo-jsonl": (
        _replace("bulk/statements.jsonl", os.mkfifo),
        f"is a named pipe (FIFO), not a file; {PLAIN}",
    ),
    "dev-zero-yaml": (
        _replace("topics.yaml", lambda p: p.symlink_to("/dev/zero")),
        f"is a device, not a file; {PLAIN}",
    ),
    "dev-zero-jsonl": (
        _replace("bulk/statements.jsonl", lambda p: p.symlink_to("/dev/zero")),
        f"is a device, not a file; {PLAIN}",
    ),
    "folder-yaml": (_replace("topics.yaml", Path.mkdir), f"is a folder, not a file; {PLAIN}"),
    "folder-jsonl": (
        _replace("bulk/statements.jsonl", Path.mkdir),
        f"is a folder, not a file; {PLAIN}",
    ),
    "socket-yaml": (
        _replace("topics.yaml", _socket),
        "is a socket, not a file; replace it with the records file",
    ),
    "link-loop": (
        _replace("topics.yaml", lambda p: p.symlink_to(p.name)),
        "is a symbolic link that loops back on itself; replace it with the file",
    ),
    "dangling-link": (
        _replace("topics.yaml", lambda p: p.symlink_to("gone.yaml")),
        "is a symbolic link to gone.yaml, which does not exist; replace it with the file",
    ),
    "huge-yaml": (
        _replace("topics.yaml", _sparse(inputs.YAML_MAX_BYTES + 1)),
        f"is {inputs.YAML_MAX_BYTES + 1:,} bytes; a records file may hold at most 256 KiB "
        "(move big tables to records/bulk/<table>.jsonl)",
    ),
    "huge-jsonl": (
        _replace("bulk/statements.jsonl", _sparse(inputs.JSONL_MAX_BYTES + 1)),
        f"is {inputs.JSONL_MAX_BYTES + 1:,} bytes; a bulk file may hold at most 16 GiB",
    ),
    "long-line-jsonl": (
        _replace(
            "bulk/participations.jsonl",
            lambda p: p.write_text(BULK_LINE + " " * BLOCK_SIZE + BULK_LINE),
        ),
        "is a line longer than 16 MiB; give one JSON object per line (a record is far shorter)",
    ),
    "bulk-not-a-folder": (
        _replace("bulk", lambda p: p.write_text(BULK_LINE)),
        "is not a folder; give records/bulk/<table>.jsonl",
    ),
}
WHERE = {
    "fifo-jsonl": "records/bulk/statements.jsonl",
    "dev-zero-jsonl": "records/bulk/statements.jsonl",
    "folder-jsonl": "records/bulk/statements.jsonl",
    "huge-jsonl": "records/bulk/statements.jsonl",
    "long-line-jsonl": "records/bulk/participations.jsonl:2:1",
    "bulk-not-a-folder": "records/bulk",
}


def _build(root: Path) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "coop100", "build", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,  # an availability bound: these end in about a second
    )
    return result.returncode, result.stderr.splitlines()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_records_file_that_is_no_plain_file_gets_one_clear_line(
    name: str, tmp_path: Path
) -> None:
    change, message = CASES[name]
    shutil.copytree(RECORDS, tmp_path / "records")
    change(tmp_path / "records")
    exit_code, lines = _build(tmp_path)
    where = WHERE.get(name, "records/topics.yaml")
    assert lines == [
        f"{where}: {message}",
        "1 problem(s): nothing was published; fix the records above",
    ]
    assert exit_code == 1
    assert not (tmp_path / "build").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_an_unreadable_records_file_is_named(tmp_path: Path) -> None:
    shutil.copytree(RECORDS, tmp_path / "records")
    (tmp_path / "records/topics.yaml").chmod(0)
    exit_code, lines = _build(tmp_path)
    assert lines == [
        "records/topics.yaml: cannot be read: permission denied; make it readable (chmod a+r)",
        "1 problem(s): nothing was published; fix the records above",
    ]
    assert exit_code == 1


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scan in 8-byte blocks, so lines and characters span block boundaries."""
    monkeypatch.setattr(inputs, "READ_BLOCK", 8)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b'{"a": 1}\n{"b": "\xc3\xa9t\xc3\xa9"}\n', 2),
        (b'{"a": 1}\n{"b": 2}', 2),  # no line break at the end
        (b"x\n" * 20, 20),
        (b"0123456789012345678\n01234", 2),  # a line of 19 bytes spans three blocks
        (b"", "1:1: is empty; give one JSON object per line, or remove the file"),
        (b"\xef\xbb\xbf{}\n", "1:1: starts with a byte-order mark; save as UTF-8 without BOM"),
        (b'{"a": 1}\n{"b": "\xff"}\n', "2:8: is not UTF-8 text; save it as UTF-8"),
        (b'{"a": 1}\n{"b": 2}\n{"c": "\xe9"}\n', "3:8: is not UTF-8 text; save it as UTF-8"),
        (b'{}\n{"b": "caf\xc3"}\n', "2:11: is not UTF-8 text; save it as UTF-8"),
        (
            b"{}\n" + b"x" * 21 + b"\n",
            "2:1: is a line longer than 20 bytes; give one JSON object per line "
            "(a record is far shorter)",
        ),
    ],
)
def test_scan_jsonl_counts_lines_and_finds_where_a_file_breaks(
    small_blocks: None, tmp_path: Path, data: bytes, found: int | str
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    try:
        result: int | str = inputs.scan_jsonl(path, max_line=20)
    except inputs.InputProblem as exc:
        result = f"{exc.line}:{exc.column}: {exc.message}"
    assert result == found


def test_a_broken_bulk_file_is_read_again_in_pieces(small_blocks: None, tmp_path: Path) -> None:
    # 8-byte reads make each piece a line or two: the broken line is validated by
    # Pydantic, the rest by the column rules, and every problem keeps its line.
    lines = [
        BULK_LINE.replace('"speaking_order": 9', f'"speaking_order": {n}').replace(
            "bulk-extra", f"bulk-{n}"
        )
        for n in range(1, 7)
    ]
    lines[1] = lines[1][:40] + "\n"
    lines[4] = lines[4].replace('"speaker"', '"dancer"')
    path = tmp_path / "participations.jsonl"
    path.write_text("".join(lines))
    found = read_bulk(path, MODEL_BY_TABLE["participations"], "p.jsonl")
    assert found.table is None
    assert [str(p) for p in found.problems] == [
        "p.jsonl:2:32: is not one JSON object per line: Unterminated string starting",
        "p.jsonl:5:1: participations 'bulk-5' field 'role': 'dancer' is not allowed: "
        + ", ".join(f"'{role.value}'" for role in list(Role)[:-1])
        + f" or '{list(Role)[-1].value}'",
    ]
