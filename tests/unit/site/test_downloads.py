"""The site over real HTTP: downloads as a file server serves them, read by real clients.

Each test talks to `coop100 serve` on loopback, with curl for the protocol's edge
cases (RFC 9110: ranges, validators) and with polars, pandas and frictionless as an
analyst would point them at the site.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from coop100.load.database import read_descriptor
from coop100.settings import DESCRIPTOR
from coop100.site import settings as site_settings
from coop100.site.downloads import read_downloads
from tests.site_fixtures import DATABASE, serving

# End to end (real processes, servers, browsers): `make test-all` and CI run it.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
import synth  # noqa: E402

PARQUET = "build/parquet/people.parquet"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def curl(url: str, *headers: str, method: str = "GET") -> Reply:
    """One request with curl, no retries and no decoding: what any HTTP client sees."""
    if shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("curl is not installed (.ci/run installs it)")
        pytest.skip("curl is not installed")
    command = ["curl", "-s", "-i", "--max-time", "30", "-X", method, url]
    if method == "HEAD":
        command[-2:-1] = ["--head"]
        command.remove("-X")
    for header in headers:
        command += ["-H", header]
    out = subprocess.run(command, capture_output=True, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), fields, body)


@pytest.fixture(scope="module")
def base(served: tuple[str, int]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def parquet(site_root: Path) -> bytes:
    return (site_root / PARQUET).read_bytes()


# -- ranges (RFC 9110, 14) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_", "status", "piece"),
    [
        ("bytes=0-99", 206, slice(0, 100)),
        ("bytes=-100", 206, slice(-100, None)),  # suffix: the last 100 bytes
        ("bytes=100-", 206, slice(100, None)),  # open: from 100 to the end
        ("bytes=0-999999999", 206, slice(0, None)),  # last-pos past the end: to the end
        ("bytes=-999999999", 206, slice(0, None)),  # suffix longer than the file: all of it
        ("bytes=0-0", 206, slice(0, 1)),
        ("bytes=0-1, 1-2", 206, slice(0, 3)),  # overlapping ranges are merged into one
        ("items=0-5", 200, slice(0, None)),  # a unit we do not know MUST be ignored
        ("bytes=abc", 200, slice(0, None)),  # invalid ranges may be ignored: whole file
        ("bytes=50-10", 200, slice(0, None)),  # last-pos before first-pos is invalid
        ("bytes=", 200, slice(0, None)),
    ],
)
def test_a_single_range_gives_exactly_those_bytes(base, parquet, range_, status, piece):
    reply = curl(f"{base}/data/{PARQUET}", f"Range: {range_}")
    assert reply.status == status
    assert reply.body == parquet[piece]
    assert reply.headers["accept-ranges"] == "bytes"
    assert reply.headers["content-type"] == "application/vnd.apache.parquet"
    if status == 206:
        start = piece.indices(len(parquet))[0]
        end = start + len(reply.body) - 1
        assert reply.headers["content-range"] == f"bytes {start}-{end}/{len(parquet)}"
    else:
        assert "content-range" not in reply.headers


@pytest.mark.parametrize("range_", ["bytes=999999999-", "bytes=-0", "bytes=999999999-999999999"])
def test_a_range_past_the_end_is_unsatisfiable(base, parquet, range_):
    reply = curl(f"{base}/data/{PARQUET}", f"Range: {range_}")
    assert reply.status == 416
    assert reply.headers["content-range"] == f"bytes */{len(parquet)}"


def test_several_ranges_come_back_as_multipart_byteranges(base, parquet):
    reply = curl(f"{base}/data/{PARQUET}", "Range: bytes=0-9, -10")
    assert reply.status == 206
    boundary = reply.headers["content-type"].removeprefix("multipart/byteranges; boundary=")
    parts = reply.body.split(f"--{boundary}".encode())[1:-1]
    bodies = [part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for part in parts]
    assert bodies == [parquet[:10], parquet[-10:]]
    assert b"Content-Range: bytes 0-9/" in parts[0]


def test_head_and_a_ranged_head_send_the_headers_only(base, parquet):
    whole = curl(f"{base}/data/{PARQUET}", method="HEAD")
    assert (whole.status, whole.body) == (200, b"")
    assert whole.headers["content-length"] == str(len(parquet))
    ranged = curl(f"{base}/data/{PARQUET}", "Range: bytes=-10", method="HEAD")
    assert (ranged.status, ranged.headers["content-length"]) == (206, "10")


# -- validators and caching (RFC 9110, 13; RFC 9111) ---------------------------------------


def test_every_download_has_a_content_etag_and_digest(base, site_root):
    for file in read_downloads(
        site_root / site_settings.SITE_DIR / site_settings.DOWNLOADS_MOUNT
    ).files.values():
        reply = curl(base + file.url, method="HEAD")
        assert reply.status == 200, file.url
        digest = hashlib.sha256(
            (
                site_root / site_settings.SITE_DIR / site_settings.DOWNLOADS_MOUNT / file.file
            ).read_bytes()
        )
        assert reply.headers["etag"] == f'"{digest.hexdigest()}"'
        assert (
            reply.headers["repr-digest"]
            == f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"
        )
        assert reply.headers["cache-control"] == site_settings.STABLE_CACHE_CONTROL


def test_revalidation_answers_304_without_the_body(base):
    first = curl(f"{base}/data/{PARQUET}")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for header in (
        f"If-None-Match: {etag}",
        f"If-None-Match: W/{etag}",  # If-None-Match compares weakly
        f'If-None-Match: "other", {etag}',
        f"If-Modified-Since: {modified}",
    ):
        reply = curl(f"{base}/data/{PARQUET}", header)
        assert (reply.status, reply.body) == (304, b""), header
        assert reply.headers["etag"] == etag
        assert reply.headers["cache-control"] == site_settings.STABLE_CACHE_CONTROL
    assert curl(f"{base}/data/{PARQUET}", 'If-None-Match: "other"').status == 200
    old = "If-Modified-Since: Mon, 23 Mar 2020 12:00:00 GMT"
    assert curl(f"{base}/data/{PARQUET}", old).status == 200


def test_if_range_gets_the_range_only_while_the_file_is_unchanged(base, parquet):
    etag = curl(f"{base}/data/{PARQUET}", method="HEAD").headers["etag"]
    same = curl(f"{base}/data/{PARQUET}", "Range: bytes=0-9", f"If-Range: {etag}")
    assert (same.status, same.body) == (206, parquet[:10])
    changed = curl(f"{base}/data/{PARQUET}", "Range: bytes=0-9", 'If-Range: "older"')
    assert (changed.status, changed.body) == (200, parquet)
    # If-Range needs a strong validator: a weak one always gets the whole file.
    weak = curl(f"{base}/data/{PARQUET}", "Range: bytes=0-9", f"If-Range: W/{etag}")
    assert weak.status == 200


EXPECTED_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".zip": "application/zip",
    ".db": "application/vnd.sqlite3",
    # The catalogue and the releases feed, beside the package.
    ".ttl": "text/turtle; charset=utf-8",
    ".jsonld": "application/ld+json",
    ".atom": "application/atom+xml",
}


def test_every_published_format_has_its_media_type(base, site_root):
    # A resource's file is served as its descriptor says (release notes, citation,
    # Popolo too); the descriptor itself, the zip and the database by their suffix.
    declared = {
        r["path"]: r["mediatype"] + (f"; charset={r['encoding']}" if "encoding" in r else "")
        for r in read_descriptor(site_root / DESCRIPTOR)["resources"]
    }
    files = read_downloads(
        site_root / site_settings.SITE_DIR / site_settings.DOWNLOADS_MOUNT
    ).files.values()
    assert {Path(f.file).suffix for f in files} >= set(EXPECTED_TYPES)
    for file in files:
        reply = curl(base + file.url, method="HEAD")
        expected = declared.get(file.file) or EXPECTED_TYPES[Path(file.file).suffix]
        assert reply.headers["content-type"] == expected, file.url


def test_the_versioned_url_holds_the_same_bytes_for_good(base, parquet):
    stable = curl(f"{base}/data/{PARQUET}")
    versioned = stable.headers["content-location"]
    assert re.fullmatch(rf"/data/v/[0-9a-f]{{16}}/{PARQUET}", versioned)
    reply = curl(base + versioned)
    assert reply.body == parquet
    assert reply.headers["etag"] == stable.headers["etag"]
    assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-location" not in reply.headers
    gone = curl(base + versioned.replace(versioned.split("/")[3], "0" * 16))
    assert gone.status == 404
    assert versioned in gone.body.decode()


def test_the_versioned_descriptor_validates_where_it_is(base):
    """Its relative paths resolve under the same version: the whole package, pinned."""
    from frictionless import validate

    versioned = curl(f"{base}/data/{DESCRIPTOR}").headers["content-location"]
    report = validate(base + versioned)
    assert report.valid, report.flatten(["title", "note"])[:5]


def test_nothing_else_is_served_and_nothing_is_written(base):
    assert curl(f"{base}/data/build/site/downloads.json").status == 404
    assert curl(f"{base}/data/../build/site/downloads.json").status == 404
    assert curl(f"{base}/data/{PARQUET}", method="DELETE").status == 405


# -- CORS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/data/{PARQUET}", f"/{DATABASE}/people.json", "/"])
def test_any_page_may_read_the_site(base, path):
    reply = curl(base + path, "Origin: https://observablehq.com")
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == "*"
    exposed = reply.headers["access-control-expose-headers"].split(", ")
    assert {"Content-Range", "ETag", "Accept-Ranges"} <= set(exposed)


def test_a_preflight_for_a_ranged_get_is_allowed(base):
    reply = curl(
        f"{base}/data/{PARQUET}",
        "Origin: https://jupyter.org",
        "Access-Control-Request-Method: GET",
        "Access-Control-Request-Headers: range, if-none-match",
        method="OPTIONS",
    )
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    allowed = {h.lower() for h in reply.headers["access-control-allow-headers"].split(", ")}
    assert {"range", "if-none-match"} <= allowed


# -- pages: a weak ETag, so caches revalidate for free -------------------------------------


def test_pages_revalidate_with_a_weak_etag(base):
    page = curl(f"{base}/{DATABASE}/people")
    tag = page.headers["etag"]
    assert tag.startswith('W/"')
    again = curl(f"{base}/{DATABASE}/statements.json?_size=5", f"If-None-Match: {tag}")
    assert (again.status, again.body) == (304, b"")
    assert again.headers["cache-control"] == f"max-age={site_settings.CACHE_TTL_SECONDS}"
    assert again.headers["vary"] == page.headers["vary"]
    # Its own SQL may call random(): such a page is never tagged or revalidated.
    sql = f"{base}/{DATABASE}.json?sql=select+random()"
    assert "etag" not in curl(sql).headers
    assert curl(sql, f"If-None-Match: {tag}").status == 200
    # With a cookie Datasette makes the page private; no tag either.
    private = curl(f"{base}/{DATABASE}/people", "Cookie: a=b", f"If-None-Match: {tag}")
    assert private.status == 200 and "etag" not in private.headers


# -- real readers ----------------------------------------------------------------------------


def test_pandas_reads_the_published_urls(base, site_root):
    for resource in read_descriptor(site_root / DESCRIPTOR)["resources"]:
        url = f"{base}/data/{resource['path']}"
        local = site_root / resource["path"]
        if resource["format"] == "parquet":
            remote, here = pd.read_parquet(url), pd.read_parquet(local)
        elif resource["format"] != "csv":
            continue  # release notes, citation, Popolo: no tables for pandas
        else:
            remote, here = pd.read_csv(url), pd.read_csv(local)
        pd.testing.assert_frame_equal(remote, here)


def test_frictionless_validates_the_package_over_http(base):
    from frictionless import validate

    report = validate(f"{base}/data/{DESCRIPTOR}")
    assert report.valid, report.flatten(["title", "note"])[:5]
    assert len(report.tasks) == len(read_descriptor(ROOT / DESCRIPTOR)["resources"])


@pytest.fixture(scope="module")
def larger_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A synthetic package big enough that a Parquet footer is a small part of the file."""
    root = tmp_path_factory.mktemp("larger")
    synth.write_archive(root, 30_000)
    subprocess.run(
        [sys.executable, "-m", "coop100", "build", "--root", str(root)],
        check=True,
        capture_output=True,
    )
    log = root / "build" / "serve.log"
    with serving(root, log) as (url, _pid):
        yield url, root


def _sent(log: Path, path: str) -> int:
    """Body bytes the server's download log says it sent for path."""
    lines = re.findall(
        rf"^coop100\.downloads: GET {re.escape(path)} \d+ (\d+)$", log.read_text(), re.M
    )
    return sum(int(n) for n in lines)


def test_polars_reads_one_column_without_fetching_the_file(larger_site):
    base, root = larger_site
    path = "/data/build/parquet/statements.parquet"
    log = root / "build" / "serve.log"
    before = _sent(log, path)
    ids = pl.scan_parquet(base + path).select("statement_id").collect()
    whole = (root / "build/parquet/statements.parquet").stat().st_size
    fetched = _sent(log, path) - before
    assert (
        ids["statement_id"].to_list()
        == pl.read_parquet(root / path.removeprefix("/data/"))["statement_id"].to_list()
    )
    assert 0 < fetched < whole * 0.75, (fetched, whole)


def test_polars_reads_csv_and_parquet_urls_as_the_local_files(larger_site):
    base, root = larger_site
    for table in ("people", "affiliations"):
        for fmt, read in (("parquet", pl.read_parquet), ("csv", pl.read_csv)):
            name = f"build/{fmt}/{table}.{fmt}"
            assert read(f"{base}/data/{name}").equals(read(root / name)), name
