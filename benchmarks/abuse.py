"""The served site under hostile load: do ordinary visitors still get their pages?

For each class of hostile request (one long SQLite call, huge results, queries
that run to the time limit, expensive table pages), 20 clients send the worst
requests of that class back to back for --seconds while two visitors load the
landing page, table pages, a row page, a search and a canned query. Measured:
the visitors' p50/p95/max and errors, the longest request of anyone, the
server's private memory (RssAnon, its SQL workers included; the mapped database
file is not in it) and its temporary files. Loopback only; every loop ends with
its scenario, every request has a timeout, and a server past --memory-ceiling is
killed and the scenario marked.

With --baseline REF the same scenarios first run against the code at git REF
(its src/ put first on PYTHONPATH, so its plugin serves), in the same run.
`auto` is the commit before the SQL guard came in. This is a measurement, not a
test: nothing here asserts on timings.

Example:

    python benchmarks/abuse.py --baseline auto --out benchmarks/results
    python benchmarks/abuse.py --archive benchmarks/work/1000000 --name abuse-1m
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from common import baseline_source, machine

from coop100.site.build import Site, build_site, datasette_command, downloads, inspect_data
from coop100.site.metadata import site_metadata
from coop100.site.queries import CANNED_QUERIES

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.site_fixtures import copy_package  # noqa: E402

DB = "coop100"
# A value of ~100 kB and LIKE/GLOB patterns of ~4,000 characters: each call below
# is one SQLite step, which sql_time_limit_ms never interrupts.
_LONG = "printf('%.*c', 99999, 'a')"
_GLOB = f"{_LONG} glob '*' || printf('%.*c', 3990, 'a') || 'b'"
_LIKE = f"{_LONG} like replace(printf('%.*c', 1990, 'x'), 'x', '%a') || 'b'"


# Rows made up on the spot, so the work does not depend on the size of the data.
_N = "with recursive n(i) as (select 1 union all select i + 1 from n limit 100000) "


def _sql(sql: str, fmt: str = ".json") -> str:
    return f"/{DB}{fmt}?" + urllib.parse.urlencode({"sql": sql})


def scenarios() -> dict[str, list[str]]:
    """The worst requests of each class, as paths."""
    many_glob = ", ".join([_GLOB] * 8)
    return {
        "one long SQLite call": [
            _sql(f"select {many_glob}"),
            _sql(f"select {', '.join([_LIKE] * 8)}"),
            _sql("select length(printf('" + "%99d" * 2000 + "', 1))"),
            _sql(
                f"select instr({_LONG}, printf('%.*c', 49999, 'a') || 'b'), "
                f"replace({_LONG}, printf('%.*c', 49999, 'a') || 'b', ''), "
                f"instr({_LONG}, printf('%.*c', 49999, 'a') || 'b'), "
                f"replace({_LONG}, printf('%.*c', 49999, 'a') || 'b', '')"
            ),
            _sql(
                f"select ltrim({_LONG}, printf('%.*c', 7999, 'b') || 'a'), "
                f"rtrim({_LONG}, printf('%.*c', 7999, 'c') || 'a'), "
                f"trim({_LONG}, printf('%.*c', 7999, 'd') || 'a')"
            ),
            _sql(
                "select count(*) from json_each('[' || replace(printf('%.*c', 49999, 'x'), "
                "'x', '1,') || '1]') a, json_each('[1,2,3]') b"
            ),
            _sql(
                "select rowid from statements_fts where statements_fts match "
                + "'"
                + " OR ".join(f"{c}*" for c in "abcdefghijklmnopqrstuvwxyz")
                + "' order by rank limit 5"
            ),
            _sql(
                "select snippet(statements_fts, 0, printf('%.*c', 9999, '['), "
                "printf('%.*c', 9999, ']'), '', 64) from statements_fts "
                "where statements_fts match 'the OR a OR of' limit 1000"
            ),
        ],
        "huge results": [
            _sql(
                "select hex(zeroblob(499999)) from statements a, statements b, "
                "statements c limit 1001"
            ),
            _sql(
                "select hex(zeroblob(49999)) from statements a, statements b, "
                "statements c limit 1001"
            ),
            _sql(_N + "select *, *, *, *, *, *, *, * from n a, statements b limit 1001"),
            _sql(_N + "select json_group_array(printf('%.*c', 90, 'x')) from n"),
            _sql("select " + ", ".join(["text"] * 150) + " from statements limit 1001", ""),
        ],
        "queries that run to the time limit": [
            _sql(
                "with recursive c(x) as (select 1 union all select x + 1 from c) "
                "select count(*) from c"
            ),
            _sql(_N + "select a.i, b.i from n a, n b order by random() limit 5"),
            _sql(_N + "select a.i % 7, b.i % 13, count(*) from n a, n b group by 1, 2"),
            _sql(
                _N + "select sum(x) over (order by y) from "
                "(select a.i x, random() y from n a, n b) limit 5"
            ),
            _sql(
                _N
                + "select count(*) from n a, n b where a.i in ("
                + ",".join(str(i) for i in range(1500))
                + ")"
            ),
            _sql(_N + "select count(distinct a.i || '-' || b.i) from n a, n b"),
            _sql("select " + "(" * 900 + "1" + ")" * 900),
        ],
        "expensive table pages": [
            f"/{DB}/statements?text__glob=" + urllib.parse.quote("*a" * 1990 + "b"),
            f"/{DB}/statements?_sort=text&_size=max",
            f"/{DB}/statements?_facet=text&_facet=statement_id&_facet=event_id",
            f"/{DB}/statements?_where=" + urllib.parse.quote(_GLOB),
            f"/{DB}/statement_topics?_where="
            + urllib.parse.quote("rowid in (" + _N + "select a.i from n a, n b)"),
            f"/{DB}/statements_detailed?text__contains="
            + urllib.parse.quote("a" * 3000)
            + "&_sort_desc=text",
        ],
    }


def visitor_pages(db_path: Path) -> list[str]:
    """What an ordinary visitor loads: landing, table pages, a row, a search, a canned query."""
    conn = sqlite3.connect(f"file:{db_path}?immutable=1", uri=True)
    (statement,) = conn.execute("select statement_id from statements limit 1").fetchone()
    conn.close()
    canned = next(iter(CANNED_QUERIES))
    return [
        "/",
        f"/{DB}/statements",
        f"/{DB}/people",
        f"/{DB}/statements/{urllib.parse.quote(statement)}",
        f"/{DB}/statements?_search=displaced",
        f"/{DB}/{canned}",
    ]


def prepare(archive: Path | None, work: Path) -> Site:
    """Return the site to serve: the package built afresh, or an archive left as it is."""
    if archive is None:
        return build_site(copy_package(work / "package"))
    # A built archive is served in place, read-only: only the site's own files go to work.
    db_path = archive / "build" / "coop100.db"
    inspect_path, metadata_path = work / "inspect.json", work / "metadata.json"
    inspected = inspect_data(db_path)
    inspect_path.write_text(json.dumps(inspected))
    counts = {name: t["count"] for name, t in inspected[db_path.stem]["tables"].items()}
    metadata = site_metadata(archive / "datapackage.json", downloads(archive), counts)
    metadata_path.write_text(json.dumps(metadata))
    (work / "data").mkdir()
    return Site(db_path, metadata_path, inspect_path, work / "data")


class Server:
    """One served instance, with its memory and temporary files sampled."""

    def __init__(self, site: Site, pythonpath: Path | None, tmp: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {**os.environ, "SQLITE_TMPDIR": str(tmp), "TMPDIR": str(tmp)}
        if pythonpath:
            env["PYTHONPATH"] = str(pythonpath)
        self.tmp = tmp
        self.log = tmp.with_name(f"{tmp.name}.log")  # not in tmp: temporary files are counted
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                datasette_command(site, "127.0.0.1", self.port),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 600
        while True:
            try:
                if get(self.port, "/-/versions.json", 2)[0] == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """The server and its child processes (the SQL workers)."""
        found = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def sample(self) -> tuple[int, int]:
        """Return (RssAnon bytes, bytes of temporary files held open) over all its processes."""
        anon = temp = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        anon += int(line.split()[1]) * 1024
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith(f"{self.tmp}/"):
                        temp += os.stat(fd).st_size
            except OSError:
                continue
        return anon, temp

    def errors(self) -> dict[str, int]:
        """The server's answers with status 500, and the exceptions it logged, counted."""
        found: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            if line.endswith(" 500 Internal Server Error"):
                found["500: " + line.split('"')[1][:120]] += 1
            elif re.match(r"^[\w.]+(Error|Exception)\b", line):
                found[line[:160]] += 1
        return dict(found)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def get(port: int, path: str, timeout: float, max_body: int = 64 << 20) -> tuple[int, int]:
    """GET path; return (status, bytes read), reading at most max_body bytes of the body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        size = 0
        while size < max_body and (chunk := response.read(1 << 20)):
            size += len(chunk)
        return response.status, size
    finally:
        conn.close()


def _timed_get(port: int, path: str, end: float, timeout: float) -> tuple[str, float]:
    """GET path with a timeout that ends at most 10 s after the scenario: (status, seconds)."""
    began = time.monotonic()
    try:
        status = str(get(port, path, max(1.0, min(timeout, end + 10 - began)))[0])
    except OSError as error:
        status = type(error).__name__
        if isinstance(error, ConnectionRefusedError):
            time.sleep(0.1)  # the server is gone: no busy loop
    return status, time.monotonic() - began


def _attack(port: int, attack: list[str], end: float, args: Any, out: Any) -> None:
    """In a process of its own (so visitors' timings share no GIL with it): the attackers."""
    statuses: Counter[str] = Counter()
    times: list[float] = []
    lock = threading.Lock()

    def attacker(offset: int) -> None:
        i = offset
        while time.monotonic() < end:
            status, took = _timed_get(port, attack[i % len(attack)], end, args.timeout)
            with lock:
                statuses[status] += 1
                times.append(took)
            i += 1

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((dict(statuses), times))


def run_scenario(
    server: Server, attack: list[str], visits: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Attack with args.clients clients for args.seconds while visitors browse."""
    end = time.monotonic() + args.seconds
    visitor_times: list[float] = []
    visitor_errors: Counter[str] = Counter()
    peak = {"rss_anon_mb": 0.0, "temp_mb": 0.0}
    # The machine's load average, sampled: on a shared machine, other jobs' load.
    loads: list[float] = []
    killed = threading.Event()
    lock = threading.Lock()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    attackers = context.Process(
        target=_attack, args=(server.port, attack, end, args, results), daemon=True
    )
    if attack:
        attackers.start()

    def visitor(offset: int) -> None:
        i = offset
        while time.monotonic() < end and not killed.is_set():
            path = visits[i % len(visits)]
            status, took = _timed_get(server.port, path, end, args.timeout)
            with lock:
                visitor_times.append(took)
                if status != "200":
                    visitor_errors[f"{status} {path}"] += 1
            i += 1
            time.sleep(0.05)

    def monitor() -> None:
        while time.monotonic() < end + 10 and not killed.is_set():
            anon, temp = server.sample()
            peak["rss_anon_mb"] = max(peak["rss_anon_mb"], anon / 2**20)
            peak["temp_mb"] = max(peak["temp_mb"], temp / 2**20)
            loads.append(os.getloadavg()[0])
            if anon > args.memory_ceiling * 2**20:
                killed.set()
                server.process.kill()
            time.sleep(0.2)

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(args.visitors)]
    watcher = threading.Thread(target=monitor)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join()
    statuses, attack_times = results.get() if attack else ({}, [])
    if attack:
        attackers.join()
    killed_early = killed.is_set()
    killed.set()
    watcher.join()
    times = sorted(visitor_times)
    return {
        "visitor_requests": len(times),
        "visitor_p50_ms": round(statistics.median(times) * 1000) if times else None,
        "visitor_p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000) if times else None,
        "visitor_max_ms": round(times[-1] * 1000) if times else None,
        "visitor_errors": dict(visitor_errors),
        "attack_statuses": statuses,
        "longest_request_ms": round(max([*attack_times, *times]) * 1000),
        "requests_over_2_s": sum(took > 2 for took in [*attack_times, *times]),
        "requests": len(attack_times) + len(times),
        "peak_rss_anon_mb": round(peak["rss_anon_mb"]),
        "peak_temp_mb": round(peak["temp_mb"]),
        "server_killed_at_memory_ceiling": killed_early,
        "machine_load_average": round(statistics.mean(loads), 1) if loads else None,
    }


def run_variant(
    name: str,
    site: Site,
    visits: list[str],
    pythonpath: Path | None,
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario, attack in scenarios().items():
        tmp = work / f"tmp-{name}-{len(results)}"
        tmp.mkdir()
        server = Server(site, pythonpath, tmp)
        try:
            calm = argparse.Namespace(
                **{**vars(args), "seconds": min(5, args.seconds), "clients": 0}
            )
            quiet = run_scenario(server, [], visits, calm)
            entry = run_scenario(server, attack, visits, args)
            entry["quiet_visitor_p95_ms"] = quiet["visitor_p95_ms"]
            entry["server_errors"] = server.errors()
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        results[scenario] = entry
        print(f"{name:>9} | {scenario}: {json.dumps(entry)}", flush=True)
    return results


def _over(entry: dict[str, Any]) -> str:
    if "requests" not in entry:  # a report from before these were counted
        return "–"
    return f"{entry['requests_over_2_s']} of {entry['requests']}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# The site under hostile load (`make bench-abuse`)",
        "",
        f"{report['clients']} hostile clients per scenario for {report['seconds']} s, "
        f"{report['visitors']} visitors loading "
        f"{', '.join(f'`{page}`' for page in report['visitor_pages'])}. "
        f"Database: {report['database']}. Machine: {report['machine']}. "
        "Visitor p95 quiet is the same visitors for 5 s before the attack. "
        "RSS is RssAnon of the server and its SQL workers (the mapped database file "
        "is not in it). Targets: visitor p95 < 500 ms, no visitor errors, no request "
        "past 2 s, RssAnon < 512 MB, temporary files bounded. Load is the machine's "
        "1-minute load average during the scenario (2 cores, shared with other jobs).",
        "",
        "| code | scenario | visitor p95 quiet ms | visitor p50 / p95 / max ms | visitor errors "
        "| longest request ms | requests over 2 s | peak RssAnon MB | peak temp MB "
        "| hostile answers | load |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for variant, results in report["variants"].items():
        for scenario, e in results.items():
            errors = sum(e["visitor_errors"].values())
            killed = (
                " (killed at the memory ceiling)" if e["server_killed_at_memory_ceiling"] else ""
            )
            answers = ", ".join(f"{k}: {v}" for k, v in sorted(e["attack_statuses"].items()))
            lines.append(
                f"| {variant} | {scenario} | {e['quiet_visitor_p95_ms']} | "
                f"{e['visitor_p50_ms']} / {e['visitor_p95_ms']} / {e['visitor_max_ms']} | "
                f"{errors} of {e['visitor_requests']} | {e['longest_request_ms']} | "
                f"{_over(e)} | "
                f"{e['peak_rss_anon_mb']}{killed} | {e['peak_temp_mb']} | {answers} | "
                f"{e.get('machine_load_average', '–')} |"
            )
    lines.append("")
    for variant, results in report["variants"].items():
        for scenario, e in results.items():
            for error, count in (e.get("server_errors") or {}).items():
                lines.append(f"- {variant}, {scenario}: {count} × `{error}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--archive", type=Path, help="a built project folder (default: this package)"
    )
    parser.add_argument("--seconds", type=float, default=20, help="per scenario (at most 60)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--visitors", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30, help="per request, seconds")
    parser.add_argument("--memory-ceiling", type=int, default=2048, help="MB; kill past it")
    parser.add_argument("--baseline", help="git ref of the code to compare with, or auto")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="abuse")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 60)
    with tempfile.TemporaryDirectory(prefix="coop100-abuse-") as tmp:
        work = Path(tmp)
        site = prepare(args.archive, work)
        visits = visitor_pages(site.db_path)
        size_mb = site.db_path.stat().st_size // 2**20
        with sqlite3.connect(f"file:{site.db_path}?immutable=1", uri=True) as conn:
            (statements,) = conn.execute("select count(*) from statements").fetchone()
        variants: dict[str, Any] = {}
        if args.baseline:
            found = baseline_source(args.baseline, work)
            if found is None:
                print(f"no baseline: {args.baseline} not found in git", file=sys.stderr)
            else:
                commit, src = found
                variants[f"before ({commit})"] = run_variant(
                    "before", site, visits, src, work, args
                )
        variants["now"] = run_variant("now", site, visits, None, work, args)
    report = {
        "clients": args.clients,
        "visitors": args.visitors,
        "seconds": args.seconds,
        "visitor_pages": visits,
        "database": f"{statements:,} statements ({size_mb:,} MB)",
        "machine": machine(),
        "variants": variants,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
