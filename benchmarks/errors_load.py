"""Load check of error responses: does a flood of bad requests slow the site for others?

Starts `coop100 serve` on a free loopback port, measures the landing page alone
with wrk (the floor), then floods the server with each kind of bad request (a
missing page, a bad parameter, a refused method) from many connections while
one more connection keeps loading the landing page, then measures the landing
page alone again. Prints, per flood, the bad requests' rate and the log bytes
each one wrote, and the landing page's latency meanwhile as a ratio to the
floor. A measurement, not a test: nothing
here asserts on timings.

Example:

    python benchmarks/errors_load.py --seconds 10 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import WRK_LUA, run_wrk, wait_for_server, wrk_command, wrk_summary

ROOT = Path(__file__).resolve().parent.parent

# Each a request that Datasette 0.65 answered with a traceback in the log.
FLOODS = {
    "missing page": ("GET", "/nosuch-page"),
    "missing table": ("GET", "/coop100/nosuch"),
    "bad sort": ("GET", "/coop100/statements?_sort=nosuch"),
    "bad view offset": ("GET", "/coop100/statements_detailed?_next=garbage"),
    "POST": ("POST", "/"),
}
LANDING = "/"
_METHOD_LUA = 'wrk.method = "{method}"\n'


def measure(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Serve root and measure the landing page alone, then beside each flood."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "serve.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "coop100",
                    "serve",
                    "--root",
                    str(root),
                    "--port",
                    str(port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for_server(base, server)
                return _scenarios(base, log_path, Path(tmp), args)
            finally:
                server.terminate()
                server.wait(timeout=30)


def _scenarios(base: str, log_path: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    landing_lua = tmp / "landing.lua"
    landing_lua.write_text(WRK_LUA)
    first = run_wrk(base + LANDING, str(landing_lua), _options(args, connections=1))
    results: dict[str, Any] = {"floods": {}}
    for name, (method, path) in FLOODS.items():
        flood_lua = tmp / "flood.lua"
        flood_lua.write_text(_METHOD_LUA.format(method=method) + WRK_LUA)
        log_before = log_path.stat().st_size
        # Both wrk runs at once: the flood, and one visitor on the landing page.
        with tempfile.TemporaryFile("w+") as flood_out:
            flood = subprocess.Popen(
                wrk_command(base + path, str(flood_lua), _options(args)),
                stdout=flood_out,
                text=True,
            )
            landing = run_wrk(base + LANDING, str(landing_lua), _options(args, connections=1))
            flood.wait()
            flood_out.seek(0)
            bad = wrk_summary(flood_out.read())
        log_bytes = log_path.stat().st_size - log_before
        requests = (bad["requests"] or 0) + (landing["requests"] or 0)
        entry = {
            "method": method,
            "path": path,
            "status": http_status(base, method, path),
            "flood": bad,
            "landing": landing,
            "log_bytes_per_request": round(log_bytes / requests) if requests else None,
        }
        results["floods"][name] = entry
        print(
            f"{name:<26} {bad['req_per_s'] or 0:>8.1f} req/s  landing {_latency(landing)}"
            f"  {entry['log_bytes_per_request']} B log/req",
            flush=True,
        )
    # The floor is the landing page alone, before and after the floods; the machine
    # is shared, so the faster of the two, which makes every ratio the larger.
    last = run_wrk(base + LANDING, str(landing_lua), _options(args, connections=1))
    quiet = min(first, last, key=lambda entry: entry.get("p95_ms") or float("inf"))
    results["landing page alone"] = quiet
    print(f"{'landing page alone':<26} {_latency(quiet)}", flush=True)
    for entry in results["floods"].values():
        entry["landing_p95_ratio"] = _ratio(entry["landing"], quiet, "p95_ms")
        entry["landing_p50_ratio"] = _ratio(entry["landing"], quiet, "p50_ms")
    return results


def http_status(base: str, method: str, path: str) -> int:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path)
        return conn.getresponse().status
    finally:
        conn.close()


def _options(args: argparse.Namespace, connections: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(
        wrk=args.wrk,
        threads=1 if connections == 1 else args.threads,
        connections=connections or args.connections,
        seconds=args.seconds,
    )


def _latency(entry: dict[str, Any]) -> str:
    return " / ".join(f"{entry.get(p, 0):.1f}" for p in ("p50_ms", "p95_ms", "p99_ms")) + " ms"


def _ratio(entry: dict[str, Any], floor: dict[str, Any], key: str) -> float | None:
    if entry.get(key) and floor.get(key):
        return round(entry[key] / floor[key], 1)
    return None


def markdown(results: dict[str, Any]) -> str:
    """Return the results as a Markdown table."""
    quiet = results["landing page alone"]
    lines = [
        f"`coop100 serve --root {results['root']}`; each flood is `wrk -t{results['threads']} "
        f"-c{results['connections']} -d{results['seconds']}s` while one more connection loads "
        f"the landing page. Landing page alone (p50 / p95 / p99): {_latency(quiet)}.",
        "",
        "| flood | status | bad req/s | landing p50 | landing p95 | landing p99 "
        "| p50 / p95 vs alone | log bytes / request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in results["floods"].items():
        landing = entry["landing"]
        if landing["requests"]:
            cells = [f"{landing.get(p, 0):.1f}" for p in ("p50_ms", "p95_ms", "p99_ms")]
            cells.append(f"{entry['landing_p50_ratio']}x / {entry['landing_p95_ratio']}x")
        else:
            cells = [f"no answer in {results['seconds']} s", "", "", ""]
        lines.append(
            f"| {name}: `{entry['method']} {entry['path']}` | {entry['status']} "
            f"| {entry['flood']['req_per_s'] or 0:.1f} | "
            + " | ".join(cells)
            + f" | {entry['log_bytes_per_request']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="a project folder with a package")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--out", type=Path, help="write errors.json and errors.md here")
    parser.add_argument("--label", default="", help="suffix of the output files' names")
    args = parser.parse_args()
    results = measure(args.root, args) | {
        "root": str(args.root.relative_to(ROOT) if args.root.is_relative_to(ROOT) else args.root),
        "seconds": args.seconds,
        "threads": args.threads,
        "connections": args.connections,
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = f"errors{args.label}"
        (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / f"{stem}.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
