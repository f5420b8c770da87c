"""Two replicas behind nginx (deploy/nginx.conf): same answers, cached, and either may die."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from coop100.site import replicas
from tests.site_fixtures import DATABASE, copy_package
from tests.unit.site.test_downloads import PARQUET, curl

# End to end (real processes, servers, browsers): `make test-all` and CI run it.
pytestmark = pytest.mark.slow


def _nginx() -> str:
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    return found


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[replicas.Replicas, Path]]:
    _nginx()
    root = copy_package(tmp_path_factory.mktemp("replicas"))
    with replicas.serving(root, replicas=2, log=root / "replicas.log") as running:
        yield running, root


def test_the_rendered_configuration_is_complete_and_nginx_accepts_it(tmp_path):
    text = replicas.render_nginx(replicas.TEMPLATE.read_text(), 8000, [8001, 8002], tmp_path)
    assert "server 127.0.0.1:8001" in text and "server 127.0.0.1:8002" in text
    assert "proxy_cache coop100;" in text
    assert "proxy_cache off;" in replicas.render_nginx(
        replicas.TEMPLATE.read_text(), 8000, [8001], tmp_path, cache=False
    )
    (tmp_path / "nginx.conf").write_text(text)
    checked = subprocess.run(
        [_nginx(), "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_every_replica_gives_the_same_validators(front):
    running, _root = front
    for path in (f"/data/{PARQUET}", f"/{DATABASE}.db", f"/{DATABASE}/people.json"):
        tags = {curl(url + path, method="HEAD").headers["etag"] for url in running.replicas}
        assert len(tags) == 1, (path, tags)


def test_pages_are_cached_and_revalidated(front):
    running, _root = front
    url = f"{running.url}/{DATABASE}/people.json?_shape=array"
    first, second = curl(url), curl(url)
    assert first.headers["x-cache-status"] in ("MISS", "HIT")
    assert second.headers["x-cache-status"] == "HIT"
    assert first.body == second.body
    again = curl(url, f"If-None-Match: {first.headers['etag']}")
    assert (again.status, again.headers["x-cache-status"]) == (304, "HIT")


def test_a_page_asked_for_with_a_cookie_is_never_shared(front):
    running, _root = front
    url = f"{running.url}/{DATABASE}/organisations"
    for _ in range(2):
        reply = curl(url, "Cookie: ds_actor=someone")
        assert reply.headers["x-cache-status"] != "HIT"
        assert reply.headers["cache-control"] == "private, no-store"


def test_ranges_through_the_cache_are_the_files_bytes(front):
    running, root = front
    data = (root / PARQUET).read_bytes()
    for _ in range(2):
        reply = curl(f"{running.url}/data/{PARQUET}", "Range: bytes=-100")
        assert (reply.status, reply.body) == (206, data[-100:])
        assert (
            reply.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
        )
    assert reply.headers["x-cache-status"] == "HIT"
    remote = pl.scan_parquet(f"{running.url}/data/{PARQUET}").select("person_id").collect()
    assert remote.equals(pl.read_parquet(root / PARQUET).select("person_id"))


def test_the_site_answers_with_one_replica_gone(front):
    running, _root = front
    os.kill(running.pids[0], signal.SIGTERM)
    for n in range(6):  # new pages each time: none is in the cache
        reply = curl(f"{running.url}/{DATABASE}/statements.json?_size={n + 1}")
        assert reply.status == 200, n
