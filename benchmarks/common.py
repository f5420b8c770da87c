"""What the benchmark scripts share: the machine's description, the code before a change,
and wrk's command line, its summary and the results' files.

Imported by the scripts beside it (run.py, serve_load.py, abuse.py, errors_load.py,
replicas_load.py), never the other way round, so the scripts import none of one
another's internals and in no circle.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        gib = f"{int(memory) / 2**20:.0f} GiB"
    except OSError:
        gib = "?"
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {gib} RAM, {system}, Python {platform.python_version()}"


def baseline_source(ref: str, work: Path) -> tuple[str, Path] | None:
    """Extract src/ at ref (`auto`: the parent of the commit adding the SQL guard)."""
    if ref == "auto":
        added = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H", "--", "src/coop100/site/sqlguard.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.split()
        if not added:
            return None
        ref = added[-1] + "^"
    target = work / "baseline"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return commit, target / "src"


# wrk's own summary has no p95; this script prints the percentiles in microseconds.
WRK_LUA = """
done = function(summary, latency, requests)
  for _, p in ipairs({50, 95, 99}) do
    io.write(string.format("p%d %d\\n", p, latency:percentile(p)))
  end
end
"""


def run_wrk(
    url: str, lua: str, args: argparse.Namespace, headers: tuple[str, ...] = ()
) -> dict[str, Any]:
    out = subprocess.run(
        wrk_command(url, lua, args, headers), check=True, capture_output=True, text=True
    ).stdout
    return wrk_summary(out)


def wrk_command(
    url: str, lua: str, args: argparse.Namespace, headers: tuple[str, ...] = ()
) -> list[str]:
    """Return the wrk command line that loads url with args' threads, connections, seconds."""
    return [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--timeout",
        "30s",
        "-s",
        lua,
        *[arg for header in headers for arg in ("-H", header)],
        url,
    ]


def wrk_summary(out: str) -> dict[str, Any]:
    """Read req/s, the request count, non-2xx answers and p50/p95/p99 from wrk's output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    entry: dict[str, Any] = {
        "req_per_s": float(rps.group(1)) if rps else None,
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }
    for p, micros in re.findall(r"^p(\d+) (\d+)$", out, re.M):
        entry[f"p{p}_ms"] = round(int(micros) / 1000, 2)
    return entry


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def result_line(name: str, entry: dict[str, Any]) -> str:
    note = f"  (HTTP {entry['status']}, {entry['non_2xx']} non-2xx)" if entry["non_2xx"] else ""
    return (
        f"{name:<34} {entry['req_per_s'] or 0:>8.1f} {entry.get('p50_ms', 0):>8.1f} "
        f"{entry.get('p95_ms', 0):>8.1f} {entry.get('p99_ms', 0):>8.1f}{note}"
    )


def wait_for_server(base: str, server: subprocess.Popen[bytes]) -> None:
    # At 1M statements `coop100 serve` hashes the database for the inspect file first.
    deadline = time.monotonic() + 600
    while True:
        try:
            with urllib.request.urlopen(base + "/-/versions.json", timeout=1):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("coop100 serve did not start")
            time.sleep(0.2)


def add_wrk_arguments(parser: argparse.ArgumentParser, connections: int, threads: int) -> None:
    """The options of a wrk run: how long a page, over how many connections and threads."""
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=connections)
    parser.add_argument("--threads", type=int, default=threads)


def find_wrk(target: str) -> str:
    """wrk's path, or exit naming the make target that installs it."""
    found = shutil.which("wrk")
    if found is None:
        sys.exit(f"wrk is missing: apt-get install wrk (make {target} does it)")
    return found


def write_results(out: Path | None, name: str, results: dict[str, Any], text: str) -> None:
    """Write <name>.json and the Markdown <name>.md into out, if given."""
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / f"{name}.md").write_text(text)
