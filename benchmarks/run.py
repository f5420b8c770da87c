"""Benchmark the pipeline at several archive sizes against its baselines, in one run.

For each size: a synthetic archive (synth.py), then each step of the build in a
child process (coop100.pipeline.build with a timer: wall time and the child's peak
RSS so far), then the package validated, the whole `coop100 build`
and `coop100 validate`, the floor (pyarrow writing the same tables and nothing
else) and the naive pipeline (`sqlite-utils insert` of the CSVs, the plain
`frictionless validate`). Writes benchmarks/results/results.json and
results.md naming the machine.

Example:

    python benchmarks/run.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
WORK = HERE / "work"
RESULTS = HERE / "results"
# The third-party modules `coop100 build` imports for the real package (python
# -X importtime): the start-up floor; tests/test_benchmarks.py checks the build
# imports exactly these. `import pydantic` alone loads next to nothing: BaseModel
# and Field load the rest on first use, and the first model built loads the
# plugin loader (its entry-point scan is left on the build's side). sqlite_utils
# imports pandas when it is installed, as it is for frictionless. The build does
# not import frictionless, nor pyarrow.acero (Table.group_by: only the rules'
# whole-table form, for records with problems, groups rows).
DEPENDENCIES = (
    "pydantic",
    "pydantic.main",
    "pydantic.fields",
    "pydantic.plugin._loader",
    "yaml",
    "click",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.csv",
    "pyarrow.json",
    "pyarrow.parquet",
    "pyarrow.pandas_compat",
    "pyarrow.vendored.version",
    "pandas",
    "sqlite_utils",
)
NAIVE = ("naive: sqlite-utils insert", "naive: frictionless validate")


def run(command: list[str], timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run a command; its wall time, its own peak RSS and exit code (None on time-out)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )
    deadline = None if timeout is None else start + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            child.kill()
            pid, status, usage = os.wait4(child.pid, 0)
            return {"seconds": None, "timed_out_after": timeout, "peak_mb": None, "rc": None}
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    output = child.stdout.read() if child.stdout else ""
    return {
        "seconds": round(seconds, 3),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "rc": os.waitstatus_to_exitcode(status),
        "output": output,
    }


# -- stages, run inside one child process per size -------------------------------------


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def stages(root: Path) -> dict[str, Any]:
    """Time each step of the build (coop100.pipeline.build) on root's records, in this process."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from coop100 import settings, validate
    from coop100.pipeline import build

    out: dict[str, Any] = {}

    @contextlib.contextmanager
    def timer(name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        out[name] = {"seconds": round(time.perf_counter() - start, 3), "peak_mb": _peak_mb()}

    build(root, timer=timer)

    # The floor: pyarrow writing the same tables, with none of our work around it.
    floor_dir = root / "floor"  # outside build/: coop100 build owns that folder
    shutil.rmtree(floor_dir, ignore_errors=True)
    floor_dir.mkdir(parents=True)
    tables = {
        path.stem: pq.ParquetFile(path).read()
        for path in sorted((root / settings.PARQUET_DIR).glob("*.parquet"))
    }
    with timer("floor: pyarrow write CSV + Parquet"):
        for name, table in tables.items():
            pacsv.write_csv(table, floor_dir / f"{name}.csv")
            pq.write_table(
                table, floor_dir / f"{name}.parquet", compression="zstd", compression_level=9
            )
    shutil.rmtree(floor_dir)
    del tables

    start = time.perf_counter()
    problems = validate.validate_package(root, engine="columnar")
    out["validate package"] = {
        "seconds": round(time.perf_counter() - start, 3),
        "peak_mb": _peak_mb(),
        "problems": len(problems),
    }
    return out


# -- one size ----------------------------------------------------------------------------


def bench_size(
    statements: int, frictionless_timeout: float, work: Path, reuse: dict[str, Any] | None = None
) -> dict[str, Any]:
    root = work / str(statements)
    synth = run(
        [
            sys.executable,
            str(HERE / "synth.py"),
            "--statements",
            str(statements),
            "--out",
            str(root),
        ]
    )
    counts = json.loads(synth.pop("output").strip().splitlines()[-1])["rows"]
    result: dict[str, Any] = {"statements": statements, "rows": counts, "synth": synth}
    staged = run([sys.executable, str(HERE / "run.py"), "--stages", str(root)])
    if staged["rc"] != 0:
        raise SystemExit(f"stages failed at {statements}:\n{staged['output']}")
    result["stages"] = json.loads(staged["output"].strip().splitlines()[-1])
    coop100 = str(BIN / "coop100")
    for command in ("build", "validate"):
        outcome = run([coop100, command, "--root", str(root)])
        if outcome["rc"] != 0:
            raise SystemExit(f"coop100 {command} failed at {statements}:\n{outcome['output']}")
        result[f"coop100 {command}"] = outcome
    if reuse is not None and all(name in reuse for name in NAIVE):
        # The baselines do not run our code: same seeded archive, same numbers.
        for name in NAIVE:
            result[name] = dict(reuse[name]) | {"reused": True}
        return _clean(result)
    db = root / "naive.db"
    db.unlink(missing_ok=True)
    csvs = sorted((root / "build" / "csv").glob("*.csv"))
    start = time.perf_counter()
    peak = 0.0
    for csv in csvs:
        step = run([str(BIN / "sqlite-utils"), "insert", str(db), csv.stem, str(csv), "--csv"])
        peak = max(peak, step["peak_mb"] or 0)
    result["naive: sqlite-utils insert"] = {
        "seconds": round(time.perf_counter() - start, 3),
        "peak_mb": peak,
    }
    result["naive: frictionless validate"] = _quiet(
        run(
            [str(BIN / "frictionless"), "validate", "datapackage.json"],
            timeout=frictionless_timeout,
            cwd=root,
        )
    )
    return _clean(result)


def _clean(result: dict[str, Any]) -> dict[str, Any]:
    for entry in result.values():
        if isinstance(entry, dict):
            entry.pop("output", None)
    return result


def _quiet(entry: dict[str, Any]) -> dict[str, Any]:
    # frictionless exits 1 on a valid package's warnings too; keep its verdict line only
    output = entry.pop("output", "")
    entry["valid"] = "VALID" in output.upper() and "INVALID" not in output.upper()
    return entry


def startup(work: Path) -> dict[str, Any]:
    """The real package: `coop100 build` against importing its dependencies (best of 5)."""
    real = work / "real"
    shutil.rmtree(real, ignore_errors=True)
    shutil.copytree(ROOT / "records", real / "records")
    imports = "import " + ", ".join(DEPENDENCIES)
    # pip compiled the dependencies' bytecode when it installed them; an editable
    # install leaves ours to the first run, which never saves it where
    # PYTHONDONTWRITEBYTECODE is set (as on this machine). Compile it too, so both
    # sides start from bytecode, as they do for a user from the second build on.
    import coop100

    compileall.compile_dir(Path(coop100.__file__).parent, quiet=1)
    best = {"import dependencies": 1e9, "coop100 build (real package)": 1e9}
    for _ in range(5):
        best["import dependencies"] = min(
            best["import dependencies"], run([sys.executable, "-c", imports])["seconds"]
        )
        best["coop100 build (real package)"] = min(
            best["coop100 build (real package)"],
            run([str(BIN / "coop100"), "build", "--root", str(real)])["seconds"],
        )
    best["ratio"] = round(best["coop100 build (real package)"] / best["import dependencies"], 2)
    return best


# -- report ---------------------------------------------------------------------------------


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


def _cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    if entry.get("seconds") is None:
        if entry.get("timed_out_after"):
            return f"> {entry['timed_out_after']:.0f} s (stopped)"
        return entry.get("note", "–")
    peak = entry.get("peak_mb")
    mark = " †" if entry.get("reused") else ""
    if peak:
        return f"{entry['seconds']:.2f} s / {peak:.0f} MB{mark}"
    return f"{entry['seconds']:.2f} s{mark}"


def markdown(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    head = "| stage | " + " | ".join(f"{s['statements']:,} statements" for s in sizes) + " |"
    lines = [
        "# coop100 benchmark",
        "",
        f"Machine: {results['machine']}. Run {results['date']}.",
        "Each cell: wall time / peak RSS (stages: the stage process's peak so far).",
        "",
        head,
        "|" + " --- |" * (len(sizes) + 1),
    ]
    names = list(sizes[0]["stages"]) if isinstance(sizes[0]["stages"], dict) else []
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(_cell(s["stages"].get(name)) for s in sizes) + " |"
        )
    for name in (
        "coop100 build",
        "coop100 validate",
        "naive: sqlite-utils insert",
        "naive: frictionless validate",
    ):
        lines.append(f"| {name} | " + " | ".join(_cell(s.get(name)) for s in sizes) + " |")
    lines.append(
        "| rows in all tables | " + " | ".join(f"{sum(s['rows'].values()):,}" for s in sizes) + " |"
    )
    lines += ["", "Ratios:", ""]
    lines.append("| ratio | " + " | ".join(f"{s['statements']:,}" for s in sizes) + " |")
    lines.append("|" + " --- |" * (len(sizes) + 1))
    for label, ratio in (
        ("build / floor (pyarrow write only)", _ratio("coop100 build", "floor")),
        ("build µs per statement", _per_statement),
        (
            "frictionless validate / coop100 validate",
            _ratio("naive: frictionless validate", "coop100 validate"),
        ),
    ):
        lines.append(f"| {label} | " + " | ".join(ratio(s) for s in sizes) + " |")
    if any(s.get(name, {}).get("reused") for s in sizes for name in NAIVE):
        lines += [
            "",
            "† baseline taken from an earlier run on the same seeded archive (`--naive-from`);",
            "it runs none of our code.",
        ]
    start = results.get("startup")
    if start:
        lines += [
            "",
            f"Start-up (real one-webinar package, best of 5): `coop100 build` "
            f"{start['coop100 build (real package)']:.2f} s, importing its dependencies "
            f"{start['import dependencies']:.2f} s: ratio {start['ratio']}.",
        ]
    if results.get("serve"):
        from serve_load import markdown as serve_markdown

        lines += ["", "## Serving", "", serve_markdown(results["serve"]).rstrip()]
    return "\n".join(lines) + "\n"


def _seconds(size: dict[str, Any], name: str) -> float | None:
    if name == "floor":
        entry = size["stages"].get("floor: pyarrow write CSV + Parquet", {})
    else:
        entry = size.get(name, {})
    value = entry.get("seconds")
    if value is None and entry.get("timed_out_after"):
        return None
    return float(value) if value is not None else None


def _ratio(a: str, b: str) -> Any:
    def ratio(size: dict[str, Any]) -> str:
        top, bottom = _seconds(size, a), _seconds(size, b)
        if top is None and size.get(a, {}).get("timed_out_after") and bottom:
            return f"> {size[a]['timed_out_after'] / bottom:.0f}x"
        return f"{top / bottom:.1f}x" if top and bottom else "–"

    return ratio


def _per_statement(size: dict[str, Any]) -> str:
    seconds = _seconds(size, "coop100 build")
    return f"{seconds / size['statements'] * 1e6:.1f}" if seconds else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--frictionless-timeout", type=float, default=900, help="seconds before stopping it"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=WORK, help="where archives are written")
    parser.add_argument("--skip-startup", action="store_true", help="skip the start-up floor")
    parser.add_argument(
        "--naive-from", type=Path, help="reuse the naive baselines of this results.json per size"
    )
    parser.add_argument(
        "--serve", action="store_true", help="then load-test serving the largest size (wrk)"
    )
    parser.add_argument("--stages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages:
        print(json.dumps(stages(args.stages)))
        return
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "startup": None if args.skip_startup else startup(args.work),
        "sizes": [],
    }
    earlier = {}
    if args.naive_from:
        earlier = {s["statements"]: s for s in json.loads(args.naive_from.read_text())["sizes"]}
    for size in args.sizes:
        results["sizes"].append(
            bench_size(size, args.frictionless_timeout, args.work, earlier.get(size))
        )
        print(json.dumps(results["sizes"][-1], indent=1)[:2000], file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.serve:
        largest = args.work / str(max(args.sizes))
        command = [sys.executable, str(HERE / "serve_load.py"), "--root", str(largest)]
        # 10 s a page: a few hundred requests each, enough for a steady p95.
        serve_args = ["--baseline", "--seconds", "10", "--out", str(args.out)]
        subprocess.run([*command, *serve_args], check=True)
        results["serve"] = json.loads((args.out / "serve.json").read_text())
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
