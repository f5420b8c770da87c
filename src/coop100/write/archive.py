"""Zip the whole published Data Package with deterministic bytes."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import zipfile
import zlib
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from coop100.background import lower_priority

ZIP_NAME = "coop100.zip"
# Zip cannot store dates before 1980; a fixed stamp keeps the bytes reproducible.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# zlib's default: level 9 takes 1.7x as long for a zip 1% smaller (1M statements).
_LEVEL = 6
# Files are compressed this many bytes at a time, so memory never holds a whole file.
_BLOCK = 4 << 20


def package_files(package_path: Path) -> list[str]:
    """Return the descriptor and every file it names (schemas, data), relative and sorted."""
    descriptor = json.loads(package_path.read_text(encoding="utf-8"))
    names = {package_path.name}
    for resource in descriptor.get("resources", []):
        paths = resource.get("path", [])
        names.update([paths] if isinstance(paths, str) else paths)
        if isinstance(resource.get("schema"), str):
            names.add(resource["schema"])
    return sorted(names)


def zip_folder(package_path: Path) -> str:
    """The one folder the zip unpacks into: the package's name and version."""
    descriptor = json.loads(package_path.read_text(encoding="utf-8"))
    return f"{descriptor['name']}-{descriptor['version']}"


def write_zip(
    package_path: Path, zip_path: Path, deflated: Mapping[str, Future[Deflated]] | None = None
) -> Path:
    """Write every file of the package at package_path into zip_path, byte-reproducibly.

    The files sit in one folder, `zip_folder`, so unzipping never scatters them.
    deflated: files (relative to the package) compressed already (by a `Deflater`);
    the zip holds the same bytes either way.
    """
    deflated = deflated or {}
    root = package_path.parent
    folder = zip_folder(package_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = zip_path.with_name(f".tmp-{zip_path.name}")
    with zipfile.ZipFile(tmp_path, "w") as archive:
        for name in package_files(package_path):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the host
            info.external_attr = 0o644 << 16
            if name in deflated:
                _copy_member(archive, info, deflated[name].result())
            else:
                _write_member(archive, info, root / name)
    tmp_path.replace(zip_path)
    return zip_path


def _write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    """Add a file a block at a time, with the bytes `writestr` of the whole file gives.

    The size is set first, as writestr sets it: the zip decides from it whether
    the member needs Zip64 sizes (over 2 GiB). Deflate's output does not depend
    on how its input is cut.
    """
    info.file_size = path.stat().st_size
    info._compresslevel = _LEVEL  # type: ignore[attr-defined]  # what writestr sets
    with path.open("rb") as source, archive.open(info, "w") as member:
        while block := source.read(_BLOCK):
            member.write(block)


class Stopped(Exception):
    """A Deflater was closed before it finished a file."""


@dataclass(frozen=True)
class Deflated:
    """A file compressed as its zip member holds it: the raw deflate stream in `spool`."""

    spool: Path
    size: int
    crc: int
    compressed: int


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, deflated: Deflated) -> None:
    """Add a member compressed already, with the bytes `_write_member` gives.

    zipfile has no public way to add compressed bytes, so this does what
    `ZipFile.open(info, "w")` and its close do, with the sizes and CRC known at
    once: tests/unit/write/test_archive.py compares the bytes, Zip64 members included. The
    spool is removed once copied.
    """
    info.file_size = deflated.size
    info.compress_size = deflated.compressed
    info.CRC = deflated.crc
    info.flag_bits = 0
    info._compresslevel = _LEVEL  # type: ignore[attr-defined]
    zip64 = info.file_size * 1.05 > zipfile.ZIP64_LIMIT  # as ZipFile.open decides
    if not zip64 and max(info.file_size, info.compress_size) > zipfile.ZIP64_LIMIT:
        raise RuntimeError(f"{info.filename}: compressed larger than Zip64's threshold allows")
    out = archive.fp
    assert out is not None  # open for writing
    out.seek(archive.start_dir)
    info.header_offset = out.tell()
    out.write(info.FileHeader(zip64))
    with deflated.spool.open("rb") as spool:
        shutil.copyfileobj(spool, out, _BLOCK)
    deflated.spool.unlink()
    archive.start_dir = out.tell()
    archive._didModify = True  # type: ignore[attr-defined]  # close() writes the directory
    archive.filelist.append(info)
    archive.NameToInfo[info.filename] = info


class Deflater:
    """Compresses the package's files for the zip on a thread, while they are written.

    `follow` a file while it is written (appended to, never rewritten) and `add`
    it once it is whole; or only `add` it. The thread compresses, in the order
    they came, whatever is there a block at a time, looking again every 50 ms for
    a followed file that has grown, so it keeps pace with the writing: zlib lets
    go of the GIL. The compressed members go to spool files under spool_dir;
    `deflated` is what `write_zip` takes. `close` stops at once: what is not
    compressed by then never is. The thread runs at the lowest priority
    (background.lower_priority): the zip takes the time the build's other work leaves.
    """

    def __init__(self, root: Path, spool_dir: Path) -> None:
        self._root = root
        self._spool_dir = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._members: dict[str, _Member] = {}  # in the order they came
        self._changed = threading.Condition()
        self._stopped = False
        self.deflated: dict[str, Future[Deflated]] = {}
        self._thread = threading.Thread(target=self._run, name="coop100-deflate", daemon=True)
        self._thread.start()

    def follow(self, name: str, path: Path) -> None:
        """name (relative to root) is being written at path, by appending, until `add`ed."""
        self._member(name, path)

    def add(self, name: str) -> None:
        """name is whole, at root/name (if not followed), and will not change."""
        if name not in self._members:
            self._member(name, self._root / name)
        with self._changed:
            self._members[name].whole = True
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()
        self._thread.join()
        for member in self._members.values():
            member.stop()

    def _member(self, name: str, path: Path) -> _Member:
        spool = self._spool_dir / f"{len(self._members)}.deflate"
        member = _Member(name, path.open("rb", buffering=0), spool)
        with self._changed:
            self._members[name] = member
            self.deflated[name] = member.done
            self._changed.notify()
        return member

    def _run(self) -> None:
        lower_priority()
        while member := self._next():
            try:
                member.step()
            except BaseException as exc:  # told to write_zip, which waits on it
                member.fail(exc)

    def _next(self) -> _Member | None:
        """The next file with a block to compress, waiting for one; None once closed."""
        with self._changed:
            while not self._stopped:
                if ready := self._ready():
                    return ready
                self._changed.wait(0.05)  # a followed file grows without a word
        return None

    def _ready(self) -> _Member | None:
        for member in self._members.values():
            if not member.done.done() and (member.whole or member.waiting() >= _BLOCK):
                return member
        return None


class _Member:
    """One file being compressed: what is read of it so far, and where it goes."""

    def __init__(self, name: str, source: io.FileIO, spool: Path) -> None:
        self.name = name
        self.whole = False
        self.done: Future[Deflated] = Future()
        self._source = source
        self._spool_path = spool
        self._spool = spool.open("wb")
        # What zipfile compresses a ZIP_DEFLATED member with, at the level
        # `_write_member` sets.
        self._compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
        self._size = self._crc = self._compressed = 0

    def waiting(self) -> int:
        """Bytes written and not compressed yet."""
        return os.fstat(self._source.fileno()).st_size - self._size

    def step(self) -> None:
        """Compress the next block; finish if the file is whole and all read."""
        whole = self.whole  # before the read: then an empty read is the end
        block = self._source.read(_BLOCK)
        if block:
            self._size += len(block)
            self._crc = zlib.crc32(block, self._crc)
            self._compressed += self._spool.write(self._compressor.compress(block))
        elif whole:
            self._compressed += self._spool.write(self._compressor.flush())
            self._close()
            self.done.set_result(
                Deflated(self._spool_path, self._size, self._crc, self._compressed)
            )

    def fail(self, exc: BaseException) -> None:
        self._close()
        self.done.set_exception(exc)

    def stop(self) -> None:
        if not self.done.done():
            self.fail(Stopped(self.name))

    def _close(self) -> None:
        self._source.close()
        self._spool.close()
