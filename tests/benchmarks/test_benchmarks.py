"""The scale path: synthetic archive, bulk records, columnar checks, benchmark scripts.

No timing is asserted here; benchmarks/run.py measures, these only prove it runs
and that the fast checks refuse exactly what the slow ones refuse.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coop100.pipeline import build
from coop100.site.queries import CANNED_QUERIES
from tests.conftest import RECORDS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import floor  # noqa: E402
import memory  # noqa: E402
import replicas_load  # noqa: E402
import run  # noqa: E402
import synth  # noqa: E402


def test_synth_is_seeded(archive: Path, tmp_path: Path) -> None:
    counts = synth.write_archive(tmp_path, 300)
    assert counts["statements"] == 300
    for table in synth.BULK_TABLES:
        name = f"records/bulk/{table}.jsonl"
        assert (tmp_path / name).read_bytes() == (archive / name).read_bytes()


def _require(tool: str) -> None:
    """Skip without tool here; fail in CI, where .ci/run installs it."""
    if shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing (.ci/run installs it)")
        pytest.skip(f"{tool} is not installed")


def _schema(db: Path) -> dict[str, Any]:
    """Each table's rows, and the names of the indexes and full-text tables on them."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as connection:
        names = [
            name
            for (name,) in connection.execute(
                "select name from sqlite_master where type = 'table'"
                " and name not like '%_fts%' and name not like '\\_%' escape '\\'"
            )
        ]
        return {
            "rows": {
                n: connection.execute(f"select count(*) from [{n}]").fetchone()[0] for n in names
            },
            "indexes": sorted(
                connection.execute(
                    "select name, tbl_name from sqlite_master where type = 'index'"
                    " and sql is not null and tbl_name not like '\\_%' escape '\\'"
                ).fetchall()
            ),
            "fts": sorted(
                connection.execute(
                    "select name from sqlite_master where sql like 'CREATE VIRTUAL TABLE%'"
                ).fetchall()
            ),
            "porter finds": connection.execute(
                "select count(*) from statements_fts where statements_fts match 'cooperatives'"
            ).fetchone()[0],
        }


def test_floor_shell_loads_what_the_build_loads(archive: Path, tmp_path: Path) -> None:
    """The sqlite3 shell's floor holds the build's tables, rows, indexes and FTS5 tables."""
    _require("sqlite3")
    built = archive / "build" / "coop100.db"
    if not built.exists():
        build(archive)
    parts = floor.shell_and_zip(archive, tmp_path, built)
    assert set(parts) == {"sqlite3 shell", "write zip"}
    ours, floors = _schema(built), _schema(tmp_path / "floor.db")
    assert floors == ours
    assert ours["porter finds"] > 0 and len(ours["fts"]) >= 1 and ours["indexes"]
    assert (tmp_path / "coop100.zip").stat().st_size > 0


def test_floor_says_how_to_install_the_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(floor.FloorError, match="make bench-1m.*apt-get install sqlite3"):
        floor.sqlite3_shell()
    script = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "10"]
    done = subprocess.run(
        [*script, "--work", str(tmp_path), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ | {"PATH": "/nonexistent"},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "apt-get install sqlite3" in done.stderr and list(tmp_path.iterdir()) == []


def test_tree_sampler_sums_the_children(tmp_path: Path) -> None:
    """A child holding 200 MB counts in the tree's sum; ru_maxrss would see one process."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; b = b'x' * (200 << 20); sys.stdout.write('ok\\n');"
            " sys.stdout.flush(); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ok\n"
        alone = memory._vmrss_kb(os.getpid())
        with memory.TreeSampler(os.getpid()) as sampler:
            sampler.sample()
        peak = sampler.peak_mb()
        assert peak is not None and peak * 1024 >= alone + (200 << 10)
    finally:
        child.communicate("")


def _size(statements: int, build: float, peak: float, floor_seconds: float) -> dict[str, Any]:
    return {
        "statements": statements,
        "date": f"run of {statements}",
        "rows": {"statements": statements},
        "coop100 build": {"seconds": build, "peak_tree_mb": peak, "peak_mb": peak / 2},
        "floors": {run.FULL_FLOOR: {"seconds": floor_seconds}},
    }


def test_targets_are_worked_out_from_the_results(tmp_path: Path) -> None:
    results = {
        "machine": "m",
        "date": "d",
        "sizes": [_size(1_000_000, 26.0, 900.0, 21.0), _size(10_000_000, 300.0, 1200.0, 200.0)],
        "startup": {"ratio": 1.6, "coop100 build (real package)": 0.8, "import dependencies": 0.5},
        "serve": {"indexed": {page: {"p95_ms": 149.0} for page in run.SEARCH_PAGES}},
    }
    verdicts = {row["target"]: row for row in run.targets(results, tmp_path)}
    by_start = {target.split(" at ")[0].split(" ≤")[0]: row for target, row in verdicts.items()}
    assert by_start["`coop100 build`"]["verdict"] == "met"  # 26 / 21 = 1.24x
    assert verdicts["`coop100 build` at 1M ≤ ~30 s"]["verdict"] == "met"
    assert by_start["peak memory of the build"]["verdict"] == "met"
    growth = verdicts["peak at 10M ≤ 1.2x peak at 1M"]
    assert (growth["verdict"], growth["measured"]) == ("not met", "1200 MB / 900 MB = 1.33x")
    assert "1M run run of 1000000" in growth["source"]
    assert [verdicts[f"`{p}` at 1M: p95 < 150 ms"]["verdict"] for p in run.SEARCH_PAGES] == [
        "met",
        "met",
    ]
    assert verdicts["start-up ratio ≤ 1.5"]["verdict"] == "not met"
    # Without 10M, or with only ru_maxrss (an older result), nothing is claimed.
    results["sizes"] = [_size(1_000_000, 40.0, 0.0, 21.0)]
    verdicts = {row["target"]: row for row in run.targets(results, tmp_path)}
    assert verdicts["peak at 10M ≤ 1.2x peak at 1M"]["verdict"] == "not measured"
    assert verdicts["`coop100 build` at 1M ≤ ~30 s"]["verdict"] == "not met"
    report = results | {"targets": list(verdicts.values()), "serve": None}
    assert "## Targets" in run.markdown(report)


def test_merge_keeps_other_sizes_serving_and_skipped_baselines() -> None:
    naive = {name: {"seconds": 9.0} for name in run.NAIVE}
    previous = {
        "date": "earlier",
        "machine": "m",
        "sizes": [_size(1_000_000, 50.0, 1500.0, 20.0) | naive, _size(100, 1.0, 10.0, 1.0)],
        "serve": {"indexed": {}},
    }
    now = {"date": "now", "sizes": [_size(1_000_000, 25.0, 800.0, 20.0)], "serve": None}
    merged = run.merged(previous, now)
    assert [s["statements"] for s in merged["sizes"]] == [100, 1_000_000]
    assert merged["sizes"][1]["coop100 build"]["seconds"] == 25.0
    assert merged["sizes"][1][run.NAIVE[0]] == {"seconds": 9.0, "reused": True}
    assert merged["serve"]["kept"] and merged["serve"]["date"] == "earlier"


@pytest.mark.slow
def test_benchmark_runs_on_a_tiny_archive(tmp_path: Path) -> None:
    _require("sqlite3")
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--skip-startup"]
    command += ["--work", str(tmp_path / "work"), "--out", str(tmp_path)]
    completed = subprocess.run(
        [*command, "--sizes", "200"], capture_output=True, text=True, check=True, timeout=600
    )
    results = json.loads((tmp_path / "results.json").read_text())
    size = results["sizes"][0]
    assert size["rows"]["statements"] == 200
    assert size["floors"][run.FULL_FLOOR]["seconds"] > 0
    assert size["coop100 build"]["peak_tree_mb"] >= size["coop100 build"]["peak_mb"] * 0.9
    table = (tmp_path / "results.md").read_text()
    # Every step the build timed is listed, whatever the build names them.
    assert size["stages"]
    for row in ["coop100 build**", *size["stages"], *size["floors"]]:
        if isinstance(size["floors"].get(row, {}), dict):
            assert f"{row} |" in table
    assert "| build / full floor |" in table
    assert {t["target"].split(" ")[0] for t in results["targets"]} >= {"`coop100"}
    assert "statements" in completed.stdout
    # A second size merges beside the first, the naive baselines skipped.
    subprocess.run(
        [
            *command,
            "--sizes",
            "150",
            "--skip-naive",
            "--skip-steps",
            "--before",
            "HEAD",
            "--repeat",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    merged = json.loads((tmp_path / "results.json").read_text())
    assert [s["statements"] for s in merged["sizes"]] == [150, 200]
    assert "naive: sqlite-utils insert" not in merged["sizes"][0]
    assert len(merged["sizes"][0][run.BEFORE_VALIDATE]["runs"]) == 2
    assert merged["sizes"][0][run.BEFORE_BUILD]["rc"] == 0
    assert len(merged["sizes"][0]["coop100 build"]["runs"]) == 2
    assert len(merged["sizes"][0]["floors"][run.FULL_FLOOR]["runs"]) == 2
    assert "| validate / validate of the code before |" in (tmp_path / "results.md").read_text()
    assert merged["sizes"][1] == size


def _third_party_modules(code: str) -> set[str]:
    """The installed packages' modules a fresh interpreter holds after running code."""
    listing = (
        "import sys, sysconfig\n"
        "places = tuple(sysconfig.get_paths()[k] for k in ('purelib', 'platlib'))\n"
        "print(*(n for n, m in list(sys.modules.items())"
        " if (getattr(m, '__file__', None) or '').startswith(places)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code + "\n" + listing], capture_output=True, text=True, check=True
    )
    return set(done.stdout.splitlines()[-1].split())


def test_startup_floor_imports_what_the_build_imports(tmp_path: Path) -> None:
    shutil.copytree(RECORDS, tmp_path / "records")
    by_build = _third_party_modules(
        "from coop100.cli import cli\n"
        f"cli(['build', '--root', {str(tmp_path)!r}], standalone_mode=False)"
    )
    by_floor = _third_party_modules("import " + ", ".join(run.DEPENDENCIES))
    assert by_floor == by_build


@pytest.mark.slow
def test_serve_load_runs_on_a_tiny_archive(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is missing (.ci/run installs it)")
        pytest.skip("wrk is not installed")
    root = tmp_path / "archive"
    synth.write_archive(root, 200)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "serve_load.py"),
            "--root",
            str(root),
            "--baseline",
            "--seconds",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    results = json.loads((tmp_path / "serve.json").read_text())
    assert results["statements"] == 200 + 16
    # Pages are dicts; the server's memory figures sit beside them as numbers.
    pages = {name for name, entry in results["indexed"].items() if isinstance(entry, dict)}
    assert {name for name, entry in results["baseline"].items() if isinstance(entry, dict)} == pages
    assert results["indexed"]["server heap MB"] > 0
    assert results["indexed"]["next page (statements?_next=)"]["status"] == 200
    assert {f"canned: {name}" for name in CANNED_QUERIES} <= pages
    assert results["indexed"]["row page"]["status"] == 200
    assert results["indexed"]["search (rare word)"]["status"] == 200
    assert results["indexed"]["search page, ranked (common word)"]["status"] == 200
    assert "| filtered page |" in (tmp_path / "serve.md").read_text()


@pytest.mark.slow
def test_replicas_load_runs_on_a_tiny_archive(tmp_path: Path) -> None:
    for tool in ("wrk", "nginx"):
        if shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{tool} is missing (.ci/run installs it)")
            pytest.skip(f"{tool} is not installed")
    root = tmp_path / "archive"
    synth.write_archive(root, 200)
    script = str(ROOT / "benchmarks" / "replicas_load.py")
    only = ["--only", "table page with facets|download", "--seconds", "1"]
    subprocess.run(
        [sys.executable, script, "--root", str(root), *only, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    results = json.loads((tmp_path / "replicas.json").read_text())
    assert list(results["setups"]) == [name for name, *_ in replicas_load.SETUPS]
    for setup in results["setups"].values():
        page = setup["table page with facets"]
        assert page["status"] == 200 and page["requests"] > 0
        assert page["replica_cpu_ms"] >= 0 and setup["mix req/s"] > 0
    warm = results["setups"]["two replicas, nginx cache warm"]["table page with facets"]
    direct = results["setups"]["one replica, direct"]["table page with facets"]
    # Answered from nginx's cache: the replicas only tick over (a clock tick over
    # thousands of requests), against milliseconds a page uncached.
    assert warm["replica_cpu_ms"] < direct["replica_cpu_ms"] / 10
    assert "| **every page equally often** |" in (tmp_path / "replicas.md").read_text()


@pytest.mark.slow
def test_remote_benchmark_runs_and_a_lookup_fetches_a_few_row_groups(tmp_path: Path) -> None:
    """benchmarks/remote.py at 100k statements, row groups of 2,000 rows (50 of statements).

    The bytes are deterministic (seeded rows, fixed reader versions): a one-person
    filter must fetch a small part of the sorted file, and all of the unsorted one.
    """
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "remote.py"), "--statements", "100000"]
        + ["--work", str(tmp_path), "--out", str(out), "--repeat", "1"]
        + ["--row-group-rows", "2000"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    results = json.loads((out / "remote.json").read_text(encoding="utf-8"))
    assert (out / "remote.md").read_text(encoding="utf-8").startswith("# Parquet for remote")
    statements = [r for r in results["remote"] if r["table"] == "statements"]
    assert {r["reader"] for r in statements} == {"polars", "pyarrow"}
    for row in statements:
        assert row["before"]["fraction"] > 0.9, row
        assert row["after"]["fraction"] < 0.15, row
        assert row["after"]["rows"] == row["before"]["rows"] > 0
