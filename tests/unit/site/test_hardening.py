"""Read-only by construction, and bounded against expensive SQL."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from coop100.site.build import Site
from coop100.site.hardening import harden
from tests.site_fixtures import DATABASE, sha256

WRITES = [
    "insert into topics (topic_id, label, definition) values ('x', 'x', 'x')",
    "update people set name = 'x'",
    "delete from statements",
    "drop table statements",
    "create table x (y)",
    "attach database '/tmp/coop100-attack.db' as attack",
    "pragma journal_mode = wal",
    "pragma writable_schema = 1",
    "pragma query_only = 0",
    "select load_extension('/tmp/nothing.so')",
    "vacuum into '/tmp/coop100-copy.db'",
    "with x as (select 1) insert into topics select 'x', 'x', 'x'",
]

BLOW_UPS = {
    "randomblob": "select randomblob(1000000000)",
    "zeroblob": "select zeroblob(1000000000)",
    "printf": "select length(printf('%.*c', 1000000000, 'x'))",
    "replace": "select length(replace(hex(zeroblob(400000)), '0', hex(zeroblob(4000))))",
    "recursive-cte": (
        "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"
    ),
    "recursive-cte-growing-string": (
        "with recursive c(s) as (select 'x' union all select s || s from c) "
        "select length(s) from c order by 1 desc limit 1"
    ),
}


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused_through_sql(client, sql):
    response = client.get(f"/{DATABASE}.json?" + urllib.parse.urlencode({"sql": sql}))
    assert response.status_code == 400, response.text[:300]
    assert response.json()["ok"] is False


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused_by_the_connection_itself(site: Site, sql):
    """Even SQL that got past Datasette's checks could not write."""
    conn = sqlite3.connect(f"file:{site.db_path}?immutable=1", uri=True)
    harden(conn)
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute(sql).fetchall()
    conn.close()


POST_ROUTES = [
    f"/{DATABASE}",
    f"/{DATABASE}/statements",
    f"/{DATABASE}/speakers",
    f"/{DATABASE}/-/create",
    f"/{DATABASE}/statements/-/insert",
    f"/{DATABASE}/statements/-/upsert",
    f"/{DATABASE}/statements/-/drop",
    f"/{DATABASE}/statements/esim-introduction/-/update",
    f"/{DATABASE}/statements/esim-introduction/-/delete",
]


def test_post_to_any_route_writes_nothing(served, site: Site):
    """POSTs to the real server, with and without a CSRF token, change nothing."""
    base, _ = served
    before = sha256(site.db_path)
    statuses = {}
    for path in POST_ROUTES:
        for body, kind in [
            (
                urllib.parse.urlencode({"sql": WRITES[0]}).encode(),
                "application/x-www-form-urlencoded",
            ),
            (
                json.dumps({"sql": WRITES[0], "row": {"statement_id": "x"}}).encode(),
                "application/json",
            ),
        ]:
            request = urllib.request.Request(
                base + path, data=body, method="POST", headers={"Content-Type": kind}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    statuses[(path, kind)] = response.status
            except urllib.error.HTTPError as error:
                statuses[(path, kind)] = error.code
    assert {key: code for key, code in statuses.items() if code < 400} == {}
    assert sha256(site.db_path) == before


def test_no_canned_query_writes(client):
    queries = client.ds.metadata()["databases"][DATABASE]["queries"]
    assert [name for name, q in queries.items() if q.get("write")] == []


def test_database_is_served_immutable(client):
    databases = client.json("/-/databases.json")
    assert [(d["name"], d["is_mutable"]) for d in databases] == [(DATABASE, False)]
    assert client.get("/_memory.json?sql=select+1").status_code == 404
    assert client.json("/-/versions.json")["sqlite"]["fts_versions"][0] == "FTS5"


def _fetch(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _memory_kb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_blow_ups_fail_fast_and_memory_stays_bounded(served, site: Site):
    base, pid = served
    _fetch(f"{base}/{DATABASE}.json?sql=select+1")
    start = _memory_kb(pid)
    refused = {}
    for name, sql in BLOW_UPS.items():
        began = time.monotonic()
        status, body = _fetch(f"{base}/{DATABASE}.json?" + urllib.parse.urlencode({"sql": sql}))
        elapsed = time.monotonic() - began
        refused[name] = (status, body.get("ok"))
        # A generous bound: the limits act at once or at sql_time_limit_ms (1 s).
        assert elapsed < 10, (name, elapsed)
    end = _memory_kb(pid)
    print(f"\nserver memory before {start} after {end} (kB)")
    assert {name: status for name, (status, _) in refused.items()} == {
        "randomblob": 400,
        "zeroblob": 400,
        "printf": 400,
        "replace": 400,
        "recursive-cte": 400,
        "recursive-cte-growing-string": 400,
    }
    # Peak RSS of the server over its whole life, blow-ups included.
    assert end["VmHWM"] < 400 * 1024, end
