"""Shared fixtures: the project root and a package freshly built from its records."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coop100.pipeline import build
from coop100.records import Records, load_records

# Fixtures of the database and the served site live in their own module.
pytest_plugins = ["tests.site_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "records"


@pytest.fixture(scope="session")
def records() -> Records:
    return load_records(RECORDS)


@pytest.fixture(scope="session")
def fresh_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder holding a copy of records/ and what `coop100 build` builds from it."""
    root = tmp_path_factory.mktemp("fresh")
    shutil.copytree(RECORDS, root / "records")
    build(root)
    return root
