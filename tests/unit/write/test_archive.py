"""The zip's members compressed while their files are written give the zip's bytes."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from coop100.write import archive
from coop100.write.archive import Deflater, Stopped, write_zip


def _package(root: Path, files: dict[str, bytes]) -> Path:
    """A descriptor naming files (written already), and its path."""
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    resources = [{"name": f"r{i}", "path": name} for i, name in enumerate(files)]
    descriptor = {"name": "pkg", "version": "1.0.0", "resources": resources}
    path = root / "datapackage.json"
    path.write_text(json.dumps(descriptor), encoding="utf-8")
    return path


def _contents() -> dict[str, bytes]:
    text = b"".join(b"row %d,some words that repeat,%d\r\n" % (i, i % 7) for i in range(20_000))
    noise = bytes((i * 7919 + (i >> 3) * 104729) % 251 for i in range(50_000))
    return {"data/a.csv": text, "data/b.bin": noise, "data/empty.txt": b""}


def _written_while_followed(root: Path, files: dict[str, bytes], chunk: int) -> Deflater:
    """Files written a chunk at a time while a Deflater follows them, then added."""
    deflater = Deflater(root, root / ".spool")
    handles = {}
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        handles[name] = (root / name).open("wb")
        deflater.follow(name, root / name)
    for start in range(0, max(len(data) for data in files.values()), chunk):
        for name, data in files.items():
            handles[name].write(data[start : start + chunk])
            handles[name].flush()
        time.sleep(0.002)  # let the thread catch up now and then
    for name, handle in handles.items():
        handle.close()
        deflater.add(name)
    return deflater


@pytest.mark.parametrize("zip64", [False, True])
def test_members_compressed_while_written_give_the_same_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip64: bool
) -> None:
    monkeypatch.setattr(archive, "_BLOCK", 4096)  # many blocks, some read while growing
    if zip64:  # every member past Zip64's threshold, as popolo.json is at 10M statements
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    files = _contents()
    plain_root, streamed_root = tmp_path / "plain", tmp_path / "streamed"
    plain = write_zip(_package(plain_root, files), tmp_path / "plain.zip")

    streamed_root.mkdir()
    deflater = _written_while_followed(streamed_root, files, chunk=3000)
    try:
        package = streamed_root / "datapackage.json"
        package.write_bytes((plain_root / "datapackage.json").read_bytes())
        deflater.add("datapackage.json")
        streamed = write_zip(package, tmp_path / "streamed.zip", deflater.deflated)
    finally:
        deflater.close()

    assert streamed.read_bytes() == plain.read_bytes()
    with zipfile.ZipFile(streamed) as opened:
        assert opened.testzip() is None
        assert opened.read("pkg-1.0.0/data/a.csv") == files["data/a.csv"]
    assert not list((streamed_root / ".spool").iterdir()), "each spool is removed once copied"


def test_only_the_members_it_compressed_are_taken_from_it(tmp_path: Path) -> None:
    files = _contents()
    package = _package(tmp_path, files)
    deflater = Deflater(tmp_path, tmp_path / ".spool")
    deflater.add("data/a.csv")
    mixed = write_zip(package, tmp_path / "mixed.zip", deflater.deflated)
    deflater.close()
    assert mixed.read_bytes() == write_zip(package, tmp_path / "plain.zip").read_bytes()


def test_close_stops_a_file_never_finished(tmp_path: Path) -> None:
    (tmp_path / "growing.csv").write_bytes(b"a,b\r\n")
    deflater = Deflater(tmp_path, tmp_path / ".spool")
    deflater.follow("growing.csv", tmp_path / "growing.csv")
    deflater.close()
    with pytest.raises(Stopped):
        deflater.deflated["growing.csv"].result(timeout=5)
    assert not [t for t in threading.enumerate() if t.name == "coop100-deflate"]


def test_a_missing_file_is_refused_and_the_others_still_compressed(tmp_path: Path) -> None:
    files = {"a.txt": b"first", "b.txt": b"second"}
    package = _package(tmp_path, files)
    deflater = Deflater(tmp_path, tmp_path / ".spool")
    with pytest.raises(FileNotFoundError):
        deflater.add("missing.txt")
    deflater.add("a.txt")
    deflater.add("b.txt")
    zipped = write_zip(package, tmp_path / "z.zip", deflater.deflated)
    deflater.close()
    assert zipped.read_bytes() == write_zip(package, tmp_path / "plain.zip").read_bytes()


def test_the_build_zip_is_the_zip_of_what_it_published(fresh_build: Path, tmp_path: Path) -> None:
    """The build compresses each file as it writes it; the zip is write_zip's all the same."""
    again = write_zip(fresh_build / "datapackage.json", tmp_path / "again.zip")
    assert (fresh_build / "build" / "coop100.zip").read_bytes() == again.read_bytes()


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value is a thread's only on Linux")
def test_work_on_the_side_runs_at_the_lowest_priority_and_leaves_the_rest() -> None:
    from coop100.background import NICE, lower_priority

    seen: list[int] = []

    def side() -> None:
        lower_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=side)
    thread.start()
    thread.join()
    assert seen == [NICE]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
