"""Bytes a remote reader fetches from the Parquet files for a selective query, before and after.

Writes the statements and participations of a synthetic archive twice, in this one
process from the same rows: in the layout before issue 24 (records order, row
groups of 2^20 rows, no page index) and in the published one (`coop100.write.layout`).
Serves both on loopback with Starlette's `FileResponse` (Range requests, as the
site's downloads) behind a counter of the body bytes each response sends, and asks
each file, over HTTP, for one person's statements and one event's participations:

- polars: `scan_parquet(url).filter(...)` (its own HTTP client);
- pyarrow's dataset reader (`pq.read_table(file, filters=...)`) over a file object
  whose every read is one Range request: pyarrow has no HTTP filesystem of its own,
  and fsspec's would add its read-ahead cache to what pyarrow asks for.

Then the same reads locally (full read and the same queries), before and after,
interleaved, best of --repeat, as ratios. The query results must be the same rows
both ways. Writes benchmarks/results/remote.json and remote.md.

Example:

    python benchmarks/remote.py --statements 1000000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import uvicorn
from starlette.responses import FileResponse, Response

from coop100.read.bulk import stream_tables
from coop100.rules.models import MODEL_BY_TABLE
from coop100.rules.tables import arrow_schema, table_schema
from coop100.write.layout import Layout, ParquetTableWriter, layout
from coop100.write.package import parquet_metadata

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import synth  # noqa: E402
from common import machine  # noqa: E402

RESULTS = HERE / "results"
# The layout every Parquet file had before issue 24: pyarrow's default row groups.
BEFORE = Layout(sort_by=None, row_group_rows=1 << 20, page_index=False)
TABLES = {"statements": "person_id", "participations": "event_id"}
GOAL = 0.10  # a one-person filter fetches under this fraction of the file


# -- writing both layouts -------------------------------------------------------------


def write_layouts(records: Path, out: Path, row_group_rows: int | None) -> dict[str, Any]:
    """Write each table in both layouts from the same batches; time each writer."""
    streamed = stream_tables(records)
    written: dict[str, Any] = {}
    for table in TABLES:
        model = MODEL_BY_TABLE[table]
        schema = arrow_schema(model).with_metadata(
            parquet_metadata(table_schema(model), streamed.about)
        )
        after = layout(table)
        if row_group_rows:
            after = Layout(after.sort_by, row_group_rows, after.page_index)
        writers = {
            name: ParquetTableWriter(out / f"{name}-{table}.parquet", schema, chosen)
            for name, chosen in (("before", BEFORE), ("after", after))
        }
        seconds = dict.fromkeys(writers, 0.0)
        for batch in streamed.batches(table):
            for name, writer in writers.items():
                started = time.perf_counter()
                writer.write(batch)
                seconds[name] += time.perf_counter() - started
        for name, writer in writers.items():
            started = time.perf_counter()
            writer.close()
            seconds[name] += time.perf_counter() - started
        written[table] = {
            name: _file_facts(out / f"{name}-{table}.parquet") | {"write_s": seconds[name]}
            for name in writers
        }
    return written


def _file_facts(path: Path) -> dict[str, Any]:
    metadata = pq.ParquetFile(path).metadata
    return {
        "bytes": path.stat().st_size,
        "rows": metadata.num_rows,
        "row_groups": metadata.num_row_groups,
        "footer_bytes": metadata.serialized_size,
    }


def pick_keys(path: Path, column: str) -> dict[str, str]:
    """The busiest value of a column (most rows) and a typical one (the median count)."""
    counts = pc.value_counts(pq.read_table(path, columns=[column])[column].drop_null())
    ranked = sorted(
        ((int(c), str(v)) for v, c in zip(counts.field(0), counts.field(1), strict=True)),
        key=lambda item: (-item[0], item[1]),
    )
    return {"busiest": ranked[0][1], "typical": ranked[len(ranked) // 2][1]}


# -- serving, counting the bytes sent ------------------------------------------------


class CountingFiles:
    """An ASGI app serving a folder's files with Range support, counting body bytes sent."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sent = 0
        self.requests = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = self.folder / scope["path"].lstrip("/")
        response: Response
        if "/" in scope["path"].lstrip("/") or not path.is_file():
            response = Response(status_code=404)
        else:
            response = FileResponse(path, media_type="application/vnd.apache.parquet")

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.body":
                with self._lock:
                    self.sent += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                with self._lock:
                    self.requests += 1
            await send(message)

        await response(scope, receive, counted)

    def take(self) -> tuple[int, int]:
        """Bytes and responses since the last call."""
        with self._lock:
            counted = self.sent, self.requests
            self.sent = self.requests = 0
        return counted


@contextmanager
def serving(app: CountingFiles) -> Iterator[str]:
    """Serve app on a free loopback port in a thread; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the file server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class RangeFile(io.RawIOBase):
    """A read-only file over HTTP: each read is one Range request, nothing cached."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client, self._url, self._at = client, url, 0
        self._size = int(client.head(url).headers["content-length"])

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = base + offset
        return self._at

    def readinto(self, buffer: Any) -> int:
        end = min(self._at + len(buffer), self._size)
        if end <= self._at:
            return 0
        headers = {"Range": f"bytes={self._at}-{end - 1}"}
        data = self._client.get(self._url, headers=headers).content
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


# -- the queries ------------------------------------------------------------------------


def _polars(source: str | Path, column: str, value: str) -> pa.Table:
    return pl.scan_parquet(source).filter(pl.col(column) == value).collect().to_arrow()


def _pyarrow(source: Any, column: str, value: str) -> pa.Table:
    return pq.read_table(source, filters=[(column, "=", value)])


def _canonical(table: pa.Table) -> list[dict[str, Any]]:
    """The rows in one order (by the first column, the id), whatever the file's and reader's."""
    first = table.column_names[0]
    return sorted(table.to_pylist(), key=lambda row: str(row[first]))


def remote_reads(folder: Path, keys: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Bytes sent for each query, file layout and reader; results checked equal."""
    app = CountingFiles(folder)
    found = []
    with serving(app) as base, httpx.Client() as client:
        for table, column in TABLES.items():
            for which, value in keys[table].items():
                results: dict[str, list[dict[str, Any]]] = {}
                for reader in ("polars", "pyarrow"):
                    row: dict[str, Any] = {
                        "table": table,
                        "filter": f"{column} = {which}",
                        "reader": reader,
                    }
                    for name in ("before", "after"):
                        url = f"{base}/{name}-{table}.parquet"
                        app.take()
                        if reader == "polars":
                            result = _polars(url, column, value)
                        else:
                            result = _pyarrow(pa.PythonFile(RangeFile(client, url)), column, value)
                        sent, requests = app.take()
                        size = (folder / f"{name}-{table}.parquet").stat().st_size
                        row[name] = {
                            "bytes": sent,
                            "requests": requests,
                            "fraction": sent / size,
                            "rows": result.num_rows,
                        }
                        results[f"{reader}-{name}"] = _canonical(result)
                    found.append(row)
                first = next(iter(results.values()))
                for label, result in results.items():
                    if result != first:
                        raise AssertionError(f"{table} {which}: {label} read other rows")
    return found


def _timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (every thread of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def local_reads(folder: Path, keys: dict[str, dict[str, str]], repeat: int) -> list[dict[str, Any]]:
    """Local read times, before and after interleaved, best of `repeat`.

    Wall time, and CPU time, which other processes on a shared machine disturb less.
    """
    found = []
    for table, column in TABLES.items():
        busiest = keys[table]["busiest"]
        reads: dict[str, Callable[[Path], object]] = {
            "polars: full read": pl.read_parquet,
            "pyarrow: full read": pq.read_table,
            f"polars: {column} = busiest": partial(_polars, column=column, value=busiest),
            f"pyarrow: {column} = busiest": partial(_pyarrow, column=column, value=busiest),
        }
        for label, read in reads.items():
            best = {name: (float("inf"), float("inf")) for name in ("before", "after")}
            for _ in range(repeat):
                for name, (wall, cpu) in best.items():
                    path = folder / f"{name}-{table}.parquet"
                    took = _timed(partial(read, path))
                    best[name] = (min(wall, took[0]), min(cpu, took[1]))
            found.append(
                {
                    "table": table,
                    "read": label,
                    "before_s": best["before"][0],
                    "after_s": best["after"][0],
                    "ratio": best["after"][0] / best["before"][0],
                    "before_cpu_s": best["before"][1],
                    "after_cpu_s": best["after"][1],
                    "cpu_ratio": best["after"][1] / best["before"][1],
                }
            )
    return found


# -- results ----------------------------------------------------------------------------


def run(statements: int, work: Path, repeat: int, row_group_rows: int | None) -> dict[str, Any]:
    root = work / str(statements)
    if not (root / "records" / "bulk" / "statements.jsonl").is_file():
        synth.write_archive(root, statements)
    folder = root / "remote"
    folder.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    files = write_layouts(root / "records", folder, row_group_rows)
    keys = {t: pick_keys(folder / f"after-{t}.parquet", c) for t, c in TABLES.items()}
    return {
        "statements": statements,
        "machine": machine(),
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "row_group_rows": row_group_rows or layout("statements").row_group_rows,
        "repeat": repeat,
        "files": files,
        "keys": keys,
        "remote": remote_reads(folder, keys),
        "local": local_reads(folder, keys, repeat),
        "load": " – ".join(f"{x:.1f}" for x in (load, os.getloadavg()[0])),
        "versions": {"polars": pl.__version__, "pyarrow": pa.__version__},
    }


def _mb(value: int) -> str:
    return f"{value / 1e6:.2f} MB"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Parquet for remote readers (issue 24)",
        "",
        f"{results['statements']:,} synthetic statements; run {results['run']}; "
        f"polars {results['versions']['polars']}, pyarrow {results['versions']['pyarrow']}. "
        "Before: records order, row groups of 2^20 rows, no page index. After: the "
        f"published layout (`coop100.write.layout`, row groups of {results['row_group_rows']:,} "
        "rows). Both written in the same run from the same rows.",
        "",
        "| file | before | after |",
        "| --- | --- | --- |",
    ]
    for table, files in results["files"].items():
        before, after = files["before"], files["after"]
        lines.append(
            f"| {table}.parquet | {_mb(before['bytes'])}, {before['row_groups']} row groups, "
            f"footer {before['footer_bytes']:,} B, written in {before['write_s']:.2f} s "
            f"| {_mb(after['bytes'])}, {after['row_groups']} row groups, "
            f"footer {after['footer_bytes']:,} B, written in {after['write_s']:.2f} s |"
        )
    lines += [
        "",
        "Bytes sent by the server (loopback HTTP, Range requests) for one query:",
        "",
        "| query | reader | rows | before | after |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in results["remote"]:
        before, after = row["before"], row["after"]
        lines.append(
            f"| {row['table']}: {row['filter']} | {row['reader']} | {after['rows']:,} "
            f"| {_mb(before['bytes'])} ({before['fraction']:.1%}, {before['requests']} requests) "
            f"| {_mb(after['bytes'])} ({after['fraction']:.1%}, {after['requests']} requests) |"
        )
    lines += [
        "",
        f"Local reads, best of {results['repeat']}, before and after interleaved; CPU is "
        "every thread of the process (goal: after / before ≤ 1.1; machine load "
        f"{results['load']}):",
        "",
        "| file | read | wall before | wall after | ratio | CPU before | CPU after | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["local"]:
        lines.append(
            f"| {row['table']} | {row['read']} | {row['before_s'] * 1000:.1f} ms "
            f"| {row['after_s'] * 1000:.1f} ms | {row['ratio']:.2f}x "
            f"| {row['before_cpu_s'] * 1000:.1f} ms | {row['after_cpu_s'] * 1000:.1f} ms "
            f"| {row['cpu_ratio']:.2f}x |"
        )
    worst = max(r["after"]["fraction"] for r in results["remote"] if r["table"] == "statements")
    verdict = "met" if worst < GOAL else "not met"
    lines += [
        "",
        f"Goal: a one-person filter fetches under {GOAL:.0%} of the file: worst "
        f"{worst:.1%} after: **{verdict}**.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument(
        "--row-group-rows",
        type=int,
        help="row groups of the after layout (default: the published one); for small tests",
    )
    args = parser.parse_args()
    results = run(args.statements, args.work, args.repeat, args.row_group_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "remote.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "remote.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
