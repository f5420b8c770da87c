"""Zip the whole published Data Package with deterministic bytes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

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


def write_zip(package_path: Path, zip_path: Path) -> Path:
    """Write every file of the package at package_path into zip_path, byte-reproducibly.

    The files sit in one folder, `zip_folder`, so unzipping never scatters them.
    """
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
