"""What the codebook costs the build: its feed against writing the same batches as CSV.

Reads a built package's Parquet files a batch at a time, as the build feeds its
documents, and times, in one process and in turns, (a) CodebookWriter fed every
batch of every table and closed, and (b) the floor: the same batches written as
CSV with the build's writer options, which every build does anyway.

Example:

    python benchmarks/codebook_feed.py --root benchmarks/work/1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from coop100 import settings
from coop100.rules.models import MODELS
from coop100.write.codebook import CodebookWriter
from coop100.write.package import CSV_OPTIONS

BATCH_ROWS = 65_536


def _batches(root: Path) -> list[tuple[str, pa.Table]]:
    found = []
    for model in MODELS:
        path = root / settings.PARQUET_DIR / f"{model.table}.parquet"
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            found.append((model.table, pa.Table.from_batches([batch])))
    return found


def codebook(batches: list[tuple[str, pa.Table]], out: Path) -> float:
    start = time.perf_counter()
    writer = CodebookWriter(out / "codebook.md", "benchmark")
    for table, batch in batches:
        writer.add(table, batch)
    writer.close()
    return time.perf_counter() - start


def floor(batches: list[tuple[str, pa.Table]], out: Path) -> float:
    start = time.perf_counter()
    writers: dict[str, pacsv.CSVWriter] = {}
    for table, batch in batches:
        if table not in writers:
            writers[table] = pacsv.CSVWriter(
                out / f"{table}.csv", batch.schema, write_options=CSV_OPTIONS
            )
        writers[table].write_table(batch)
    for writer in writers.values():
        writer.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="a built package's folder")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    batches = _batches(args.root)
    rows = sum(batch.num_rows for _, batch in batches)
    best = {"codebook": float("inf"), "floor": float("inf")}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.repeat):
            best["floor"] = min(best["floor"], floor(batches, Path(work)))
            best["codebook"] = min(best["codebook"], codebook(batches, Path(work)))
    print(
        f"{rows:,} rows in {len(batches)} batches: codebook {best['codebook'] * 1000:.1f} ms, "
        f"CSV floor {best['floor'] * 1000:.1f} ms, "
        f"ratio {best['codebook'] / best['floor']:.4f} (best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
