"""Serve the site from N replicas behind one caching nginx (deploy/nginx.conf), on loopback.

The database is immutable and every validator is a content hash, so replicas
share nothing: each is the same `datasette serve` command on its own port over the
same site folder. nginx balances between them and caches pages and downloads by
their Cache-Control. `make serve-replicas` runs two; benchmarks/replicas_load.py
measures one, two and the warm cache.

Example:

    python -m coop100.site.replicas --replicas 2 --port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from coop100.site import settings
from coop100.site.build import Site, build_site, datasette_command

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "nginx.conf"
# Under build/site/, which the build owns: the rendered configuration, cache and logs.
RUN_DIR = "replicas"
_STARTUP_SECONDS = 600  # a million statements: the site folder hashes ~2 GB first


@dataclass(frozen=True)
class Replicas:
    """A running front: nginx's URL and each replica's."""

    url: str
    replicas: list[str]
    pids: list[int]


def render_nginx(
    template: str, port: int, replica_ports: list[int], run_dir: Path, cache: bool = True
) -> str:
    """Fill in deploy/nginx.conf's @NAME@ placeholders; fail on any left over."""
    values = {
        "LISTEN": f"{settings.HOST}:{port}",
        "SERVERS": "\n".join(
            f"        server {settings.HOST}:{p} max_fails=1 fail_timeout=5s;"
            for p in replica_ports
        ),
        "RUN": str(run_dir),
        "CACHE": "coop100" if cache else "off",
        "CACHE_MAX": "4g",
        "DB_FILE": re.escape(f"{settings.DATABASE}.db"),
        # nginx started by root switches its workers to nobody, who could not write
        # the cache here; run them as whoever runs this (only on loopback).
        "USER": f"user {getpass.getuser()};" if os.geteuid() == 0 else "",
    }
    text = re.sub(r"@([A-Z_]+)@", lambda m: values[m[1]], template)
    if "@" in re.sub(r"#.*", "", text):
        raise ValueError(f"{TEMPLATE}: a placeholder was left unfilled")
    return text


def wait_until_up(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    """Return once url answers; raise if the process dies or takes too long."""
    deadline = time.monotonic() + _STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start (exit code {process.poll()})") from None
            time.sleep(0.2)


def free_ports(count: int) -> list[int]:
    """count ports on loopback that nothing listens on now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((settings.HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def serving(
    root: Path,
    replicas: int = 2,
    port: int | None = None,
    cache: bool = True,
    log: Path | None = None,
) -> Iterator[Replicas]:
    """Build the site folder once, start the replicas and nginx; stop them all on exit."""
    # Debian installs it in /usr/sbin, which a user's PATH may lack.
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if nginx is None:
        raise RuntimeError(
            "nginx is not installed: apt-get install nginx (make serve-replicas does)"
        )
    site: Site = build_site(root)
    run_dir = root / settings.SITE_DIR / RUN_DIR
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    ports = free_ports(replicas + 1)
    front = port if port is not None else ports[-1]
    ports = ports[:replicas]
    processes: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        stack.callback(_stop, processes)
        for replica_port in ports:
            command = datasette_command(site, settings.HOST, replica_port)
            processes.append(subprocess.Popen(command, stdout=output, stderr=output))
        urls = [f"http://{settings.HOST}:{p}" for p in ports]
        for url, process in zip(urls, processes, strict=True):
            wait_until_up(f"{url}/-/versions.json", process, f"replica {url}")
        conf = run_dir / "nginx.conf"
        conf.write_text(render_nginx(TEMPLATE.read_text(), front, ports, run_dir, cache))
        processes.append(
            subprocess.Popen(
                [nginx, "-c", str(conf), "-p", str(run_dir)], stdout=output, stderr=output
            )
        )
        url = f"http://{settings.HOST}:{front}"
        wait_until_up(f"{url}/-/versions.json", processes[-1], f"nginx {url}")
        yield Replicas(url, urls, [p.pid for p in processes])


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="a built project folder")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8000, help="nginx's port")
    parser.add_argument("--no-cache", action="store_true", help="balance only, cache nothing")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the replicas and nginx are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with serving(args.root, args.replicas, args.port, cache=not args.no_cache) as front:
        print(f"coop100: {len(front.replicas)} replicas behind nginx at {front.url}/", flush=True)
        for url in front.replicas:
            print(f"  replica {url}/", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
