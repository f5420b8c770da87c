"""The scale path: synthetic archive, bulk records, columnar checks, benchmark scripts.

No timing is asserted here; benchmarks/run.py measures, these only prove it runs
and that the fast checks refuse exactly what the slow ones refuse.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coop100 import bulk, fastcheck, settings, validate
from coop100.models import MODEL_BY_TABLE
from coop100.package import file_digest
from coop100.pipeline import build
from coop100.problems import RecordsError
from coop100.records import Records
from coop100.site.queries import CANNED_QUERIES

from .conftest import RECORDS
from .test_checks import verdicts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import floor  # noqa: E402
import memory  # noqa: E402
import replicas_load  # noqa: E402
import run  # noqa: E402
import synth  # noqa: E402


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    synth.write_archive(root, 300)
    return root


def test_synth_is_seeded(archive: Path, tmp_path: Path) -> None:
    counts = synth.write_archive(tmp_path, 300)
    assert counts["statements"] == 300
    for table in synth.BULK_TABLES:
        name = f"records/bulk/{table}.jsonl"
        assert (tmp_path / name).read_bytes() == (archive / name).read_bytes()


def test_synthetic_archive_builds_and_validates(archive: Path, records: Records) -> None:
    read = bulk.read_tables(archive / "records")
    assert read.tables["statements"].num_rows == 300 + len(records.rows("statements"))
    assert build(archive).paths != []
    assert validate.validate_package(archive, engine="columnar") == []
    assert validate.validate_package(archive, engine="frictionless") == []


# -- bulk rows: the column rules refuse exactly what the models refuse ----------------

BAD_VALUES: list[tuple[str, str, Any]] = [
    ("statements", "text", " leading space"),
    ("statements", "text", "trailing space\u00a0"),
    ("statements", "text", ""),
    ("statements", "text", "=SUM(A1)"),
    ("statements", "text", "bell\x07"),
    ("statements", "text", "e\u0301"),  # not NFC
    ("statements", "text", "x" * 2001),
    ("statements", "type", "rant"),
    ("statements", "statement_id", "Not-A-Slug"),
    ("statements", "statement_id", "slug\n"),
    ("statements", "event_id", None),
    ("statements", "person_id", None),  # and no organisation_id: no speaker
    ("statements", "paragraph", 0),
    ("events", "start_date", "2020-02-30"),
    ("events", "start_date", "2020-3-01"),
    ("events", "start_date", "\u0662\u0660\u0662\u0660-01-01"),
    ("events", "end_date", "1999-01-01"),  # before start_date
    ("events", "start_time", "24:00"),
    ("events", "start_time", "9:30"),
    ("events", "attendance_summary", -1),
    ("events", "mode", "telepathy"),
    ("organisations", "country", "ch"),
    ("organisations", "country", "CH\n"),
    ("organisations", "founded", "1919-13"),
    ("organisations", "wikidata_id", "Q0"),
    ("affiliations", "end", "1980"),  # before start
    ("affiliations", "start", "20200"),
    ("participations", "speaking_order", 0),
    ("participations", "role", "host"),
]
GOOD_VALUES: list[tuple[str, str, Any]] = [
    ("statements", "text", "Zoë said “ça va” — 中文 ✓"),
    ("statements", "text", "x" * 2000),
    ("events", "start_date", "2020-02-29"),
    ("events", "start_time", "23:59"),
    ("organisations", "founded", "1919-02"),
    ("affiliations", "end", "2018-12"),
]


def _first_row(archive: Path, table: str, needs: str) -> dict[str, Any]:
    path = archive / "records" / "bulk" / f"{table}.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row: dict[str, Any] = json.loads(line)
        if needs in row or needs in ("paragraph", "end", "country", "founded", "wikidata_id"):
            if table != "statements" or row.get("paragraph"):
                return row
    raise AssertionError(f"no {table} row with {needs}")


@pytest.mark.parametrize(("table", "field", "value"), BAD_VALUES + GOOD_VALUES)
def test_column_rules_agree_with_models(archive: Path, table: str, field: str, value: Any) -> None:
    row = _first_row(archive, table, field)
    changed = dict(row) | {field: value}
    if table == "affiliations":
        changed.setdefault("start", "1990")
    by_model, by_rules = verdicts(MODEL_BY_TABLE[table], [row, changed])
    assert by_model == by_rules
    assert by_model == [False, (table, field, value) in BAD_VALUES]


def _seed_bulk(archive: Path, tmp_path: Path, table: str, edit: Any) -> Path:
    root = tmp_path / "seeded"
    synth.write_archive(root, 300)
    path = root / "records" / "bulk" / f"{table}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    edit(rows)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return root


@pytest.mark.parametrize(
    ("table", "edit", "expected"),
    [
        (
            "statements",
            lambda rows: rows[4].update(statement_id=rows[3]["statement_id"]),
            "records/bulk/statements.jsonl:5:2: statements '{}' field 'statement_id': "
            "duplicate id (first at records/bulk/statements.jsonl:4)",
        ),
        (
            "statements",
            lambda rows: rows[2].update(person_id="nobody"),
            "records/bulk/statements.jsonl:3:56: statements '{}' field 'person_id': "
            "'nobody' is not a known people id",
        ),
        (
            "affiliations",
            lambda rows: rows[0].update(preferred=not rows[0]["preferred"]),
            "field 'preferred'",
        ),
        (
            "statements",
            lambda rows: rows[1].update(speaker="x"),
            "records/bulk/statements.jsonl:2:1: statements '{}' field 'speaker': "
            "is not a field of statements",
        ),
        (
            "statements",
            lambda rows: rows[1].update(paragraph="3"),
            "records/bulk/statements.jsonl:2:1: statements '{}' field 'paragraph': "
            "must be a whole number, not '3'",
        ),
    ],
)
def test_bulk_problems_name_file_and_line(
    archive: Path, tmp_path: Path, table: str, edit: Any, expected: str
) -> None:
    root = _seed_bulk(archive, tmp_path, table, edit)
    rows = (root / "records" / "bulk" / f"{table}.jsonl").read_text().splitlines()
    line = int(expected.split(":")[1]) if expected.startswith("records") else 1
    key = json.loads(rows[line - 1]).get("statement_id", "")
    with pytest.raises(RecordsError) as caught:
        bulk.read_tables(root / "records")
    text = str(caught.value)
    assert expected.format(key) in text


# -- the published package: fastcheck finds what frictionless finds ------------------

SEEDED = [
    # (resource, row number as frictionless counts it, field, new cell, error type)
    ("participations", 3, "speaking_order", "three", "type-error"),
    ("events", 2, "start_date", "2020-02-30", "type-error"),
    ("statements", 4, "type", "rant", "constraint-error"),
    ("people", 3, "name", "", "constraint-error"),
    ("statements", 5, "statement_id", "<copy row 4>", "primary-key"),
    ("statements", 6, "person_id", "nobody", "foreign-key"),
    ("statement_topics", 2, "topic_id", "astrology", "foreign-key"),
]


def _seed_package(source: Path, target: Path) -> None:
    """A copy of a built package with SEEDED written into its CSVs, checksums updated."""
    for name in ("datapackage.json", "schemas", "build", *settings.ROOT_DOCUMENTS):
        src = source / name
        if src.is_dir():
            import shutil

            shutil.copytree(src, target / name)
        else:
            (target / name).write_bytes(src.read_bytes())
    descriptor = json.loads((target / "datapackage.json").read_text())
    for resource, row, field, value, _ in SEEDED:
        path = target / "build" / "csv" / f"{resource}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        column = rows[0].index(field)
        if value == "<copy row 4>":
            value = rows[4 - 1][column]
        rows[row - 1][column] = value
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\r\n").writerows(rows)
    for entry in descriptor["resources"]:
        if entry.get("format") == "csv":
            size, sha = file_digest(target / entry["path"])
            entry |= {"bytes": size, "hash": f"sha256:{sha}"}
    (target / "datapackage.json").write_text(json.dumps(descriptor, indent=2))


def _frictionless_findings(root: Path) -> set[tuple[str, int, str]]:
    from frictionless import Package

    report = Package(str(root / "datapackage.json")).validate()
    return {
        (task.name, error.row_number or 0, error.type)
        for task in report.tasks
        for error in task.errors
        if not task.name.endswith("-parquet")
    }


def test_fastcheck_finds_every_seeded_error_frictionless_finds(
    fresh_build: Path, tmp_path: Path
) -> None:
    _seed_package(fresh_build, tmp_path)
    descriptor = json.loads((tmp_path / "datapackage.json").read_text())
    fast = {(f.table, f.row, f.kind) for f in fastcheck.check_package(tmp_path, descriptor)}
    slow = _frictionless_findings(tmp_path)
    seeded = {(resource, row, kind) for resource, row, _, _, kind in SEEDED}
    assert seeded <= slow
    assert seeded <= fast
    assert fast == slow


def test_fastcheck_is_clean_on_the_real_package(fresh_build: Path) -> None:
    descriptor = json.loads((fresh_build / "datapackage.json").read_text())
    assert fastcheck.check_package(fresh_build, descriptor) == []


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
