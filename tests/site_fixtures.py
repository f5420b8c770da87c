"""Fixtures for the database and the site: a copy of the published package, served."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import csv
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coop100.pipeline import build
from coop100.settings import CATALOG_FILES, DESCRIPTOR
from coop100.site.build import Site, build_site, datasette_app
from coop100.write.archive import package_files
from tests.conftest import RECORDS

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "coop100"
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium reaches for Google's hosts, which this
# closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_BUILT: list[Path] = []


def fixture_package() -> Path:
    """The package the fixture records build: built once per test run, never changed."""
    if not _BUILT:
        root = Path(tempfile.mkdtemp(prefix="coop100-fixture-"))
        atexit.register(shutil.rmtree, root, True)
        shutil.copytree(RECORDS, root / "records")
        build(root)
        _BUILT.append(root)
    return _BUILT[0]


@pytest.fixture(scope="session")
def fresh_build() -> Path:
    """A project folder holding the fixture records and what they build; never changed."""
    return fixture_package()


def copy_package(target: Path) -> Path:
    """Copy the fixture package (descriptor, schemas, CSV, Parquet; the catalogue and
    feed the build writes beside it) into target."""
    source = fixture_package()
    for name in [*package_files(source / DESCRIPTOR), *CATALOG_FILES]:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target / name)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class SiteClient:
    """Datasette's in-process client, called synchronously on one event loop."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.loop = asyncio.new_event_loop()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.ds.client.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.ds.client.post(path, **kwargs))

    def json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        return response.json()


@pytest.fixture(scope="session")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_package(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="session")
def site(site_root: Path) -> Iterator[Site]:
    """The built site; its database must be byte-for-byte unchanged after every test."""
    built = build_site(site_root)
    before = sha256(built.db_path)
    yield built
    if sha256(built.db_path) != before:
        pytest.fail(f"{built.db_path} changed during the test run")


@pytest.fixture(scope="session")
def client(site: Site) -> Iterator[SiteClient]:
    site_client = SiteClient(datasette_app(site))
    yield site_client
    site_client.loop.close()


@pytest.fixture(scope="session")
def package_rows(site_root: Path) -> dict[str, list[dict[str, str]]]:
    """Every published CSV's rows, as text, keyed by table."""
    rows = {}
    for path in sorted((site_root / "build" / "csv").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            rows[path.stem] = list(csv.DictReader(fh))
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(root: Path, log_path: Path) -> Iterator[tuple[str, int]]:
    """Run `coop100 serve` for root on a free loopback port: (base URL, server pid)."""
    port = free_port()
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "coop100", "serve", "--root", str(root), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/-/versions.json", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = log_path.read_text(errors="replace")
                pytest.fail(f"coop100 serve did not start:\n{output}")
            time.sleep(0.2)
    try:
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def served(site: Site, site_root: Path) -> Iterator[tuple[str, int]]:
    """`coop100 serve` running on a free loopback port: (base URL, server pid)."""
    with serving(site_root, site_root / "build" / "serve.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright: one per test module.

    Not one per run: while Playwright's sync API is running, the in-process
    Datasette client (SiteClient) cannot run its own event loop.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; .ci/run installs it (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()
