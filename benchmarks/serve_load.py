"""Load check of the served site: requests per second and p50/p95/p99 latency, with wrk.

Starts `coop100 serve` (the same plugin, immutable database, inspect file and
metadata) on a free loopback port for a built project folder, runs wrk against
a table page with its facets, the same with a facet value picked, filtered
pages, full-text searches, a row page, a view page, every canned query and the
heaviest row of each page type of coop100.site.pages (a person, an organisation,
an event, a topic, a statement), and prints one line each. With --baseline it
then serves a copy of the same database without the indexes, the full-text
tables and the stored facet counts, the database a plain `sqlite-utils insert`
would give, and measures the same pages (the search as `text__contains`, the
only search that copy has). This is a measurement, not a test: nothing here asserts on timings.

Example:

    python benchmarks/serve_load.py --root benchmarks/work/1000000 --baseline --out results
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    WRK_LUA,
    add_wrk_arguments,
    find_wrk,
    http_status,
    machine,
    result_line,
    run_wrk,
    wait_for_server,
    write_results,
)

from coop100.site.queries import CANNED_QUERIES

ROOT = Path(__file__).resolve().parent.parent


def pages(db_path: Path, baseline: bool = False) -> dict[str, str]:
    """Return the pages to load, with ids picked from the database itself."""
    db = sqlite3.connect(f"file:{db_path}?immutable=1", uri=True)
    try:
        # The speaker with the most statements: the heaviest filtered page.
        (person,) = db.execute(
            "select person_id from statements where person_id is not null "
            "group by person_id order by count(*) desc, person_id limit 1"
        ).fetchone()
        count = db.execute("select count(*) from statements").fetchone()[0]
        (statement,) = db.execute(
            "select statement_id from statements limit 1 offset ?", [count // 2]
        ).fetchone()
        # The cursor of the table page's "next" link: its 100th row in key order.
        (second_page,) = db.execute(
            "select statement_id from statements order by statement_id limit 1 offset 99"
        ).fetchone()
        page_ids = _page_ids(db, person)
    finally:
        db.close()
    search = "text__contains=displace" if baseline else "_search=displaced"
    found: dict[str, str] = {
        "table page with facets": "/coop100/statements",
        "facet value picked (type=claim)": "/coop100/statements?type=claim",
        "filtered page": f"/coop100/statements?person_id={person}",
        "filtered page (statement_topics)": "/coop100/statement_topics?topic_id=history",
        "search (rare word)": f"/coop100/statements?{search}",
        "search (common word)": "/coop100/statements?"
        + ("text__contains=housing" if baseline else "_search=housing"),
        "search (common word), JSON": "/coop100/statements.json?"
        + ("text__contains=housing" if baseline else "_search=housing"),
        "search page, ranked (common word)": "/coop100/statements"
        + ("?text__contains=housing" if baseline else "/-/search?_search=housing"),
        "search page, ranked (rare word), JSON": "/coop100/statements"
        + (f".json?{search}" if baseline else f"/-/search.json?{search}"),
        "row page": f"/coop100/statements/{statement}",
        "next page (statements?_next=)": f"/coop100/statements?_next={second_page}",
        "view page (statements_detailed)": "/coop100/statements_detailed",
        "other table pages (affiliations)": "/coop100/affiliations",
    }
    for name in CANNED_QUERIES:
        found[f"canned: {name}"] = f"/coop100/{name}"
    # Pages of coop100.site.pages, the heaviest of each type, after a floor: the
    # same row as JSON, a row page with no page to build (compare p95s within a run).
    found |= {
        "page floor: row as JSON": f"/coop100/statements/{statement}.json",
        "page: person (most statements)": f"/coop100/people/{person}",
        "page: person, next statements": (
            f"/coop100/people/{person}?statements_after={page_ids['person_cursor']}"
        ),
        "page: organisation (most parts)": f"/coop100/organisations/{page_ids['organisation']}",
        "page: event": f"/coop100/events/{page_ids['event']}",
        "page: programme event": f"/coop100/events/{page_ids['programme']}",
        "page: topic (most statements)": f"/coop100/topics/{page_ids['topic']}",
        "page: topic, next statements": (
            f"/coop100/topics/{page_ids['topic']}?statements_after={page_ids['topic_cursor']}"
        ),
        "page: statement (most answered)": f"/coop100/statements/{page_ids['statement']}",
    }
    return found


def _page_ids(db: sqlite3.Connection, person: str) -> dict[str, str]:
    """The heaviest row of each page type, and the cursors of second pages."""
    from coop100.site.pages import PAGE_SIZE

    def one(sql: str, *params: Any) -> str:
        found = db.execute(sql, params).fetchone()
        return str(found[0]) if found else ""

    topic = one(
        "select topic_id from statement_topics group by topic_id order by count(*) desc limit 1"
    )
    return {
        "person_cursor": one(
            "select statement_id from statements where person_id = ? order by rowid "
            "limit 1 offset ?",
            person,
            PAGE_SIZE - 1,
        ),
        "organisation": one(
            "select parent_organisation_id from organisations where parent_organisation_id "
            "is not null group by 1 order by count(*) desc limit 1"
        ),
        "event": one(
            "select event_id from statements group by event_id order by count(*) desc limit 1"
        ),
        "programme": one(
            "select parent_event_id from events where parent_event_id is not null "
            "group by 1 order by count(*) desc limit 1"
        ),
        "topic": topic,
        "topic_cursor": one(
            "select statement_id from statement_topics where topic_id = ? "
            "order by statement_id limit 1 offset ?",
            topic,
            PAGE_SIZE - 1,
        ),
        "statement": one(
            "select responds_to_statement_id from statements where responds_to_statement_id "
            "is not null group by 1 order by count(*) desc limit 1"
        ),
    }


def strip_database(root: Path, target: Path) -> Path:
    """Copy root's package and database to target without FK indexes and FTS tables."""
    from coop100.write.package import published_files

    for rel in published_files(root):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(root / rel, target / rel)
    db_path = target / "build" / "coop100.db"
    shutil.copyfile(root / "build" / "coop100.db", db_path)
    shutil.copyfile(root / "build" / "coop100.zip", target / "build" / "coop100.zip")
    db = sqlite3.connect(db_path)
    names = db.execute(
        "select type, name from sqlite_master where (type = 'index' and name like 'idx_%') "
        "or (type = 'table' and (name like '%_fts' or name glob '_facet_*'))"
    ).fetchall()
    for kind, name in names:
        db.execute(f"drop {kind} if exists [{name}]")
    db.commit()
    db.execute("vacuum")
    db.close()
    return db_path


def measure(root: Path, paths: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Serve root with `coop100 serve` and run wrk against each path."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "coop100", "serve", "--root", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, Any] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(WRK_LUA)
        lua.flush()
        try:
            wait_for_server(base, server)
            for name, path in paths.items():
                results[name] = run_wrk(base + path, lua.name, args) | {"path": path}
                results[name]["status"] = http_status(base + path)
                print(result_line(name, results[name]), flush=True)
            status = Path(f"/proc/{server.pid}/status").read_text()
            for key, field in (("server peak MB", "VmHWM"), ("server heap MB", "RssAnon")):
                found = re.search(rf"{field}:\s+(\d+) kB", status)
                results[key] = int(found.group(1)) // 1024 if found else None
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def markdown(results: dict[str, Any]) -> str:
    """Return the results as a Markdown table, baseline beside the indexed database."""
    indexed, baseline = results["indexed"], results.get("baseline") or {}
    lines = [
        f"Machine: {results.get('machine', '?')}. Run {results.get('date', '?')}; load average"
        f" (1 min) {results.get('load average at start', '?')} at the start,"
        f" {results.get('load average at end', '?')} at the end.",
        "",
        f"Serving {results['root']} ({results['statements']:,} statements) with "
        f"`wrk -t{results['threads']} -c{results['connections']} -d{results['seconds']}s`; "
        "latency in ms. Baseline: the same database without its indexes, full-text "
        "tables or stored facet counts (its search is `text__contains`).",
        "",
        "| page | req/s | p50 | p95 | p99 | baseline p50 | baseline p95 | speed-up p50 / p95 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in indexed.items():
        if not isinstance(entry, dict):
            continue
        base = baseline.get(name, {})
        cells = [f"{entry['req_per_s']:.1f}"] + [f"{entry.get(p, 0):.1f}" for p in _PCTS]
        if base:
            cells += [f"{base.get('p50_ms', 0):.1f}{_flag(base)}", f"{base.get('p95_ms', 0):.1f}"]
            cells.append(" / ".join(_speedup(base, entry, p) for p in ("p50_ms", "p95_ms")))
        else:
            cells += ["–", "–", "–"]
        lines.append(f"| {name}{_flag(entry)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "HTTP 400: Datasette stopped the query at sql_time_limit_ms (1 s); the page "
        "says the query took too long.",
        f"Server peak RSS: {indexed.get('server peak MB')} MB, most of it the database file"
        f" mapped into memory (mmap_size); its own memory (RssAnon) at the end:"
        f" {indexed.get('server heap MB')} MB.",
    ]
    return "\n".join(lines) + "\n"


_PCTS = ("p50_ms", "p95_ms", "p99_ms")


def _speedup(base: dict[str, Any], entry: dict[str, Any], key: str) -> str:
    if base.get(key) and entry.get(key) and not _flag(base) and not _flag(entry):
        return f"{base[key] / entry[key]:.0f}x"
    return "–"


def _flag(entry: dict[str, Any]) -> str:
    return f" (HTTP {entry['status']})" if entry.get("status", 200) != 200 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="a built project folder")
    parser.add_argument("--baseline", action="store_true", help="also serve it unindexed")
    add_wrk_arguments(parser, connections=1, threads=1)
    parser.add_argument("--out", type=Path, help="write serve.json and serve.md here")
    parser.add_argument("--match", default="", help="load only the pages whose name has this")
    args = parser.parse_args()
    args.wrk = find_wrk("bench-serve")
    root = args.root.resolve()
    db_path = root / "build" / "coop100.db"
    if not db_path.exists():
        subprocess.run([sys.executable, "-m", "coop100", "build", "--root", str(root)], check=True)
    with sqlite3.connect(f"file:{db_path}?immutable=1", uri=True) as db:
        statements = db.execute("select count(*) from statements").fetchone()[0]
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load average at start": round(os.getloadavg()[0], 1),
        "root": str(args.root),
        "statements": statements,
        "seconds": args.seconds,
        "connections": args.connections,
        "threads": args.threads,
    }
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {statements:,} statements")
    print(f"{'page':<34} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    selected = {k: v for k, v in pages(db_path).items() if args.match in k}
    results["indexed"] = measure(root, selected, args)
    if args.baseline:
        with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
            print("baseline: no foreign-key indexes, no full-text search")
            stripped = strip_database(root, Path(tmp))
            base_pages = pages(stripped, baseline=True)
            base_pages = {k: v for k, v in base_pages.items() if args.match in k}
            results["baseline"] = measure(Path(tmp), base_pages, args)
    results["load average at end"] = round(os.getloadavg()[0], 1)
    write_results(args.out, "serve", results, markdown(results))


if __name__ == "__main__":
    main()
