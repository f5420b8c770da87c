"""Throughput of the site from one replica, from two behind nginx, and from nginx's warm cache.

Serves a built project folder with coop100.site.replicas (deploy/nginx.conf) and
runs wrk against the pages of serve_load.py, plus a ranged read of the largest
Parquet file as polars makes it (its last 256 KiB), in four set-ups:

- one replica, direct: `datasette serve` as `coop100 serve` runs it;
- one replica behind nginx, cache off: what the proxy itself costs;
- two replicas behind nginx, cache off: what a second process adds;
- two replicas behind nginx, cache warm: each page asked for once first.

Prints one line a page and writes replicas.json and replicas.md. A measurement,
not a test: nothing here asserts on timings. The machine's load average is
recorded before and after each set-up, since other work on it shifts the numbers.

Example:

    python benchmarks/replicas_load.py --root benchmarks/work/1000000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import (
    WRK_LUA,
    add_wrk_arguments,
    find_wrk,
    http_status,
    result_line,
    run_wrk,
    write_results,
)
from serve_load import pages

from coop100.site import replicas

HERE = Path(__file__).resolve().parent
FOOTER = "Range: bytes=-262144"  # polars' first read of a Parquet file
SETUPS = (
    ("one replica, direct", 1, False, "replica"),
    ("one replica, nginx (no cache)", 1, False, "nginx"),
    ("two replicas, nginx (no cache)", 2, False, "nginx"),
    ("two replicas, nginx cache warm", 2, True, "nginx"),
)


def targets(db_path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each page of serve_load.py and the Parquet footer read: name -> (path, headers)."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {
        name: (path, ()) for name, path in pages(db_path).items()
    }
    found["download: statements.parquet footer"] = (
        "/data/build/parquet/statements.parquet",
        (FOOTER,),
    )
    return found


def measure(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run every set-up over every target."""
    paths = {
        name: target
        for name, target in targets(root / "build" / "coop100.db").items()
        if re.search(args.only, name)
    }
    results: dict[str, Any] = {}
    for name, count, cache, through in SETUPS:
        print(f"-- {name}", flush=True)
        entry: dict[str, Any] = {"load before": os.getloadavg()[0]}
        with replicas.serving(root, replicas=count, cache=cache) as front:
            base = front.url if through == "nginx" else front.replicas[0]
            if cache:
                for path, headers in paths.values():
                    request = urllib.request.Request(base + path, headers=dict(_split(headers)))
                    # A page past the time limit (HTTP 400) is not cached: measured as it fails.
                    with contextlib.suppress(urllib.error.HTTPError):
                        with urllib.request.urlopen(request, timeout=60) as response:
                            response.read()
            servers, proxy = front.pids[:-1], front.pids[-1:]
            for page, (path, headers) in paths.items():
                before = cpu_seconds(servers), cpu_seconds(proxy)
                entry[page] = run_wrk(base + path, args.lua, args, headers) | {"path": path}
                after = cpu_seconds(servers), cpu_seconds(proxy)
                entry[page]["status"] = http_status(base + path)
                done = entry[page]["requests"] or 1
                # CPU time per request: unlike req/s, barely moved by other work on the machine.
                entry[page]["replica_cpu_ms"] = round((after[0] - before[0]) / done * 1000, 3)
                entry[page]["nginx_cpu_ms"] = round((after[1] - before[1]) / done * 1000, 3)
                print(result_line(page, entry[page]), flush=True)
        entry["load after"] = os.getloadavg()[0]
        entry["mix req/s"] = mix(entry)
        results[name] = entry
    return results


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes, their threads and child processes."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        children = Path(f"/proc/{pid}/task/{pid}/children")
        kids = [int(c) for c in children.read_text().split()] if children.exists() else []
        for one in [pid, *kids]:
            try:
                fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # it has exited
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def mix(entry: dict[str, Any]) -> float:
    """Requests per second with every page asked for equally often (harmonic mean).

    Pages that failed (a query past the time limit) are left out: they measure
    Datasette's time limit, not throughput.
    """
    rates = [
        v["req_per_s"]
        for v in entry.values()
        if isinstance(v, dict) and v["req_per_s"] and not v.get("non_2xx")
    ]
    return round(len(rates) / sum(1 / r for r in rates), 1) if rates else 0.0


def _split(headers: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(h.split(":", 1)[0], h.split(":", 1)[1].strip()) for h in headers]


def markdown(results: dict[str, Any]) -> str:
    """One row a page, one column a set-up: req/s (p50 ms)."""
    names = list(results["setups"])
    lines = [
        f"Serving a synthetic archive (benchmarks/synth.py, {results['statements']:,} "
        f"statements) on "
        f"{results['machine']}, `wrk -t{results['threads']} -c{results['connections']} "
        f"-d{results['seconds']}s` a page; req/s (p50 ms).",
        "",
        "| page | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    first = results["setups"][names[0]]
    for page, value in first.items():
        if not isinstance(value, dict):
            continue
        cells = []
        for name in names:
            got = results["setups"][name][page]
            flag = f", {got['non_2xx']} non-2xx" if got.get("non_2xx") else ""
            cells.append(f"{got['req_per_s'] or 0:.0f} ({got.get('p50_ms', 0):.1f}{flag})")
        lines.append(f"| {page} | " + " | ".join(cells) + " |")
    lines.append(
        "| **every page equally often** | "
        + " | ".join(f"**{results['setups'][n]['mix req/s']:.0f}**" for n in names)
        + " |"
    )
    lines.append(
        "| load average before / after | "
        + " | ".join(
            f"{results['setups'][n]['load before']:.1f} / {results['setups'][n]['load after']:.1f}"
            for n in names
        )
        + " |"
    )
    direct, warm = results["setups"][names[0]], results["setups"][names[-1]]
    lines += [
        "",
        "CPU time per request (ms), summed over the processes' threads: what sizing rests "
        "on, since unlike req/s it hardly moves with other work on the machine.",
        "",
        f"| page | a replica ({names[0]}) | nginx ({names[-1]}) |",
        "| --- | --- | --- |",
    ]
    for page, value in direct.items():
        if isinstance(value, dict):
            lines.append(
                f"| {page} | {value.get('replica_cpu_ms', 0):.2f} "
                f"| {warm[page].get('nginx_cpu_ms', 0):.3f} |"
            )
    lines.append(
        f"| **every page equally often** (mean, failed pages left out) "
        f"| **{mean_cpu(direct, 'replica_cpu_ms'):.1f}** "
        f"| **{mean_cpu(warm, 'nginx_cpu_ms'):.3f}** |"
    )
    return "\n".join(lines) + "\n"


def mean_cpu(entry: dict[str, Any], key: str) -> float:
    """CPU ms per request with every page asked for equally often."""
    costs = [v[key] for v in entry.values() if isinstance(v, dict) and not v.get("non_2xx")]
    return sum(costs) / len(costs) if costs else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="a project folder (default benchmarks/work/N)")
    parser.add_argument("--statements", type=int, default=1_000_000, help="N, to build it")
    # Eight connections: enough to keep two replicas busy at once.
    add_wrk_arguments(parser, connections=8, threads=2)
    parser.add_argument("--out", type=Path, help="write replicas.json and replicas.md here")
    parser.add_argument("--only", default="", help="measure the pages whose name matches this")
    args = parser.parse_args()
    args.wrk = find_wrk("bench-replicas")
    root = (args.root or HERE / "work" / str(args.statements)).resolve()
    if not (root / "records").exists():
        synth = [sys.executable, str(HERE / "synth.py"), "--statements", str(args.statements)]
        subprocess.run([*synth, "--out", str(root)], check=True)
    if not (root / "build" / "coop100.db").exists():
        subprocess.run([sys.executable, "-m", "coop100", "build", "--root", str(root)], check=True)
    with sqlite3.connect(f"file:{root / 'build' / 'coop100.db'}?immutable=1", uri=True) as db:
        statements = db.execute("select count(*) from statements").fetchone()[0]
    sys.path.insert(0, str(HERE))
    from common import machine

    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(WRK_LUA)
        lua.flush()
        args.lua = lua.name
        setups = measure(root, args)
    results = {
        "statements": statements,
        "machine": machine(),
        "seconds": args.seconds,
        "connections": args.connections,
        "threads": args.threads,
        "setups": setups,
    }
    print(markdown(results))
    write_results(args.out, "replicas", results, markdown(results))


if __name__ == "__main__":
    main()
