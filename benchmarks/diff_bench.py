"""Benchmark `coop100 diff` on two large packages against reading their Parquet.

Copies a built package (e.g. the 1M-statement archive that `benchmarks/run.py`
builds), edits a few rows of the copy the way a curator would (statements
retexted, added and removed; affiliations retitled), then times, in this one
process, the floor — pyarrow reading every Parquet file of both packages — and
`diff_packages(old, new)`, and checks the diff found exactly the edits. Writes
benchmarks/results/diff.md and diff.json.

Example:

    python benchmarks/diff_bench.py --root benchmarks/work/1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from coop100.versions.diff import diff_packages

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EDITED_TEXT = 5  # statements whose text is reworded
ADDED = 10  # statements added
REMOVED = 3  # statements removed, with their statement_topics rows
RETITLED = 5  # affiliations whose role is retitled


def _copy_package(root: Path, target: Path) -> None:
    """Link every published file of root into target (edited files are rewritten, not changed)."""
    descriptor = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    (target).mkdir(parents=True)
    shutil.copyfile(root / "datapackage.json", target / "datapackage.json")
    for resource_ in descriptor["resources"]:
        for rel in (resource_["path"], resource_.get("schema")):
            if isinstance(rel, str) and not (target / rel).exists():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                os.link(root / rel, target / rel)


def _rewrite(root: Path, table: str, data: pa.Table) -> None:
    """Replace a table's Parquet file (unlinking the shared one) and its size and hash."""
    path = root / "build" / "parquet" / f"{table}.parquet"
    metadata = pq.read_schema(path).metadata
    path.unlink()
    pq.write_table(data.replace_schema_metadata(metadata), path, compression="zstd")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    descriptor_path = root / "datapackage.json"
    descriptor = json.loads(descriptor_path.read_text(encoding="utf-8"))
    for resource_ in descriptor["resources"]:
        if resource_["name"] == f"{table}-parquet":
            resource_["coop100:bytes"] = path.stat().st_size
            resource_["coop100:hash"] = f"sha256:{digest}"
        if resource_["name"] == table:
            # The diff reads the Parquet; mark the stale CSV as changed too.
            resource_["hash"] = "sha256:" + "0" * 64
    descriptor_path.write_text(json.dumps(descriptor, indent=2) + "\n", encoding="utf-8")


def edit(root: Path) -> dict[str, int]:
    """Make the curator's edits in the package at root; return what the diff must find."""
    statements = pq.read_table(root / "build" / "parquet" / "statements.parquet")
    # Remove statements from the middle of the table, and their topic links.
    removed_ids = statements["statement_id"].slice(statements.num_rows // 2, REMOVED)
    statements = statements.filter(
        pc.invert(pc.is_in(statements["statement_id"], value_set=removed_ids))
    )
    links = pq.read_table(root / "build" / "parquet" / "statement_topics.parquet")
    unlinked = links.filter(pc.invert(pc.is_in(links["statement_id"], value_set=removed_ids)))
    _rewrite(root, "statement_topics", unlinked)
    texts = statements["text"].to_pylist()
    step = len(texts) // (EDITED_TEXT + 1)
    for i in range(1, EDITED_TEXT + 1):
        texts[i * step] = texts[i * step] + " (reworded)"
    statements = statements.set_column(
        statements.column_names.index("text"), "text", pa.array(texts, pa.string())
    )
    extra = statements.slice(0, ADDED).to_pylist()
    for i, row in enumerate(extra):
        row["statement_id"] = f"added-statement-{i}"
    statements = pa.concat_tables(
        [statements, pa.Table.from_pylist(extra, schema=statements.schema)]
    )
    _rewrite(root, "statements", statements)

    affiliations = pq.read_table(root / "build" / "parquet" / "affiliations.parquet")
    roles = affiliations["role"].to_pylist()
    step = len(roles) // (RETITLED + 1)
    for i in range(1, RETITLED + 1):
        roles[i * step] = f"{roles[i * step] or 'Member'} (retitled)"
    affiliations = affiliations.set_column(
        affiliations.column_names.index("role"), "role", pa.array(roles, pa.string())
    )
    _rewrite(root, "affiliations", affiliations)
    return {
        "statements": statements.num_rows,
        "affiliations": affiliations.num_rows,
        "statement_topics": unlinked.num_rows,
        "links_removed": links.num_rows - unlinked.num_rows,
    }


def floor(roots: list[Path]) -> float:
    """Seconds to read every Parquet file of the packages with pyarrow."""
    start = time.perf_counter()
    for root in roots:
        for path in sorted((root / "build" / "parquet").glob("*.parquet")):
            with pq.ParquetFile(path) as parquet:
                parquet.read()
    return time.perf_counter() - start


def measure(old: Path, new: Path, repeat: int, links_removed: int) -> dict[str, Any]:
    floors, diffs = [], []
    result = None
    for _ in range(repeat):
        floors.append(floor([old, new]))
        start = time.perf_counter()
        result = diff_packages(old, new)
        diffs.append(time.perf_counter() - start)
        result.to_markdown(max_rows=20)
    assert result is not None
    tables = {t.name: t for t in result.changed_tables}
    found = {
        "statements": {
            "added": tables["statements"].added_count,
            "removed": tables["statements"].removed_count,
            "changed": len(tables["statements"].changed),
        },
        "affiliations": {"changed": len(tables["affiliations"].changed)},
        "statement_topics": {"removed": tables["statement_topics"].removed_count},
    }
    expected = {
        "statements": {"added": ADDED, "removed": REMOVED, "changed": EDITED_TEXT},
        "affiliations": {"changed": RETITLED},
        "statement_topics": {"removed": links_removed},
    }
    if found != expected:
        raise SystemExit(f"the diff found {found}, expected {expected}")
    return {
        "floor_s": min(floors),
        "diff_s": min(diffs),
        "ratio": min(diffs) / min(floors),
        "runs": repeat,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "found": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="a built package's folder")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coop100-diff-bench-", dir=HERE) as work:
        new = Path(work) / "new"
        _copy_package(args.root, new)
        rows = edit(new)
        figures = measure(args.root, new, args.repeat, rows["links_removed"])
    figures["rows"] = rows
    figures["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diff.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "diff.md").write_text(
        "# `coop100 diff` of two large packages\n\n"
        f"Machine: {figures['machine']}. Best of {figures['runs']} runs, in one process.\n"
        f"Edits: {EDITED_TEXT} statements reworded, {ADDED} added, {REMOVED} removed; "
        f"{RETITLED} affiliations retitled; the removed statements' {rows['links_removed']} "
        f"statement_topics rows removed ({rows['statements']:,} statements, "
        f"{rows['statement_topics']:,} statement_topics, {rows['affiliations']:,} "
        "affiliations after the edits).\n\n"
        "| measure | seconds |\n|---|---:|\n"
        f"| floor: pyarrow reads both packages' Parquet | {figures['floor_s']:.2f} |\n"
        f"| `diff_packages(old, new)` | {figures['diff_s']:.2f} |\n"
        f"| ratio | {figures['ratio']:.2f}x |\n\n"
        f"Peak RSS of the process: {figures['peak_rss_mb']:.0f} MB.\n",
        encoding="utf-8",
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
