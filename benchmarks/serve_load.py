"""Load check of the served site: requests per second and p50/p99 latency, with wrk.

Starts `coop100 serve` on a free loopback port, runs wrk against the landing
page, a table page, a search and a canned query, and prints one line each.
This is a measurement, not a test: nothing here asserts on timings.

Usage: python benchmarks/serve_load.py [--seconds 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = {
    "landing page": "/",
    "table page": "/coop100/statements",
    "search": "/coop100/statements?_search=displaced",
    "canned query": "/coop100/speakers",
}
# wrk prints its latency distribution only with --latency; this script reports p50 and p99.
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is missing: apt-get install wrk (make bench-serve does it)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "coop100", "serve", "--root", str(ROOT), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(base)
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s against {base}")
        print(f"{'page':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  path")
        for name, path in PATHS.items():
            out = subprocess.run(
                [
                    wrk,
                    f"-t{args.threads}",
                    f"-c{args.connections}",
                    f"-d{args.seconds}s",
                    "--latency",
                    base + path,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
            pct = {p: float(v) * _UNIT[u] for p, v, u in _PERCENTILE.findall(out)}
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            note = f"  ({errors.group(1)} non-2xx)" if errors else ""
            print(f"{name:<14} {rps:>9.1f} {pct['50']:>8.2f} {pct['99']:>8.2f}  {path}{note}")
        status = Path(f"/proc/{server.pid}/status")
        if status.exists():
            peak = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
            print(f"server peak RSS: {int(peak.group(1)) // 1024} MB" if peak else "")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/-/versions.json", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("coop100 serve did not start")
            time.sleep(0.2)


if __name__ == "__main__":
    main()
