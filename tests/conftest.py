"""Shared fixtures: the project root and a package freshly built from its records."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from coop100.pipeline import build
from coop100.read.records import Records, load_records

# Fixtures of the database and the served site live in their own module.
pytest_plugins = ["tests.site_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
# The records the tests run on: frozen, so the live records/ may grow without
# breaking them (the drift check alone says "rebuild").
RECORDS = ROOT / "tests" / "fixtures" / "records"
# The live records and the package committed from them: only the drift check, the
# release checks and the validity of the published package read them.
LIVE_RECORDS = ROOT / "records"
# The benchmarks' scripts (synth.py writes a synthetic archive of bulk records).
sys.path.insert(0, str(ROOT / "benchmarks"))
import synth  # noqa: E402


@pytest.fixture(scope="session")
def records() -> Records:
    return load_records(RECORDS)


@pytest.fixture(scope="session")
def live_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder holding a copy of the live records/ and what they build."""
    root = tmp_path_factory.mktemp("live")
    shutil.copytree(LIVE_RECORDS, root / "records")
    build(root)
    return root


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic archive: the fixture records and 300 statements of bulk records."""
    root = tmp_path_factory.mktemp("archive")
    synth.write_archive(root, 300)
    return root
