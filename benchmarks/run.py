"""Benchmark the pipeline at several archive sizes against its floors and baselines.

For each size: a synthetic archive (synth.py; kept when its synth.json says it
has that many statements), then each step of the build in a child process
(coop100.pipeline.build with a timer: each step's wall time and the peak of the
summed RSS of that process and its children during the step, whatever steps the
build names), the package validated, the whole `coop100 build` (wall time, the
peak of its process tree's summed RSS sampled ~20 times a second, and ru_maxrss),
then on the package it published the floors (floor.py: pyarrow writing the same
CSV and Parquet; the `sqlite3` shell importing the CSVs into the same tables,
indexes and FTS5 tables while a thread writes the zip), `coop100 validate`, and
the naive pipeline (`sqlite-utils insert` of the CSVs, the plain `frictionless
validate`). Writes benchmarks/results/results.json and results.md naming the
machine, with the targets of the issue "Close to the limit" met or not.

Sizes not run keep their numbers from the results.json already there (each size
says its date and commit), so `--sizes 10000000` adds 10M beside an earlier 1M;
--fresh starts over.

Example:

    python benchmarks/run.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import floor
from common import baseline_source, machine
from memory import TreeSampler
from synth import REAL_RECORDS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
WORK = HERE / "work"
RESULTS = HERE / "results"
# The third-party modules `coop100 build` imports for the real package (python
# -X importtime): the start-up floor; tests/benchmarks/test_benchmarks.py checks the build
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
    # The DCAT-AP catalogue and the releases feed (coop100.write.catalog): rdflib loads its
    # store and serialisers as plugins, on first use.
    "rdflib",
    "rdflib.plugins.stores.memory",
    "rdflib.plugins.serializers.turtle",
    "rdflib.plugins.serializers.jsonld",
    "feedgen.feed",
)
NAIVE = ("naive: sqlite-utils insert", "naive: frictionless validate")
# The floors, as floors() names them; the full floor is the pyarrow floor plus
# the sqlite3 shell's load with the zip written meanwhile.
PYARROW_FLOOR = "pyarrow write CSV + Parquet"
SHELL_FLOOR = "sqlite3 shell: import CSVs, indexes, FTS5 rebuild (zip meanwhile)"
FULL_FLOOR = "full floor"
# The targets (issue "Close to the limit"), all at 1M statements but the
# 10M memory one.
TARGET_SIZE = 1_000_000
LARGE_SIZE = 10_000_000
BUILD_OVER_FLOOR = 1.3
BUILD_SECONDS = 30.0
PEAK_MB = 1024.0  # 1 GiB, as this report counts MB (MiB)
LARGE_OVER_TARGET_PEAK = 1.2
SEARCH_P95_MS = 150.0
STARTUP_RATIO = 1.5
# "Nothing else may get slower": compared with the run before the work.
BEFORE = RESULTS / "before-issue14.json"
NOISE = 1.1  # within this factor a figure is "within noise", not "slower"
# With --before REF: the build and validate of the code at REF, in the same run.
BEFORE_BUILD = "coop100 build, code before"
BEFORE_VALIDATE = "coop100 validate, code before"
SEARCH_PAGES = ("search (common word)", "search (common word), JSON")
RARE_SEARCH = "search (rare word)"


def run(command: list[str], timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run a command: its wall time, exit code (None on time-out) and peak memory.

    peak_tree_mb is the peak of the summed RSS of the command and all its
    descendants (memory.TreeSampler); peak_mb is the wait4 ru_maxrss, the largest
    single process of the tree.
    """
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )
    deadline = None if timeout is None else start + timeout
    with TreeSampler(child.pid) as sampler:
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
        "peak_tree_mb": sampler.peak_mb(),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "rc": os.waitstatus_to_exitcode(status),
        "output": output,
    }


# -- stages and floors, each run in a child process per size --------------------------


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _stage_timer(out: dict[str, Any], sampler: TreeSampler) -> Any:
    """A pipeline Timer: wall time and tree peak per step, listed as the build names them.

    A step is listed when it starts (so in order even when steps overlap); a name
    timed more than once adds up its seconds and says how many calls.
    """

    @contextlib.contextmanager
    def timer(name: str) -> Iterator[None]:
        entry = out.setdefault(name, {"seconds": 0.0})
        start = time.perf_counter()
        sampler.sample()
        try:
            yield
        finally:
            sampler.sample()
            end = time.perf_counter()
            entry["seconds"] = round(entry["seconds"] + end - start, 3)
            peak = sampler.peak_mb(start, end)
            if peak is not None:
                entry["peak_mb"] = max(peak, entry.get("peak_mb", 0.0))
            entry["ru_maxrss_mb"] = _peak_mb()
            entry["calls"] = entry.get("calls", 0) + 1

    return timer


def stages(root: Path) -> dict[str, Any]:
    """Time each step of the build (coop100.pipeline.build) on root's records, in this process."""
    from coop100.pipeline import build
    from coop100.verify import validate

    steps: dict[str, Any] = {}
    with TreeSampler(os.getpid()) as sampler:
        build(root, timer=_stage_timer(steps, sampler))
        checked: dict[str, Any] = {}
        with _stage_timer(checked, sampler)("validate package"):
            problems = validate.validate_package(root, engine="columnar")
    checked["validate package"]["problems"] = len(problems)
    return {"stages": steps, **checked}


def floors(root: Path) -> dict[str, Any]:
    """The floors on the package root's build published, in this process (floor.py)."""
    from coop100 import settings

    work = root / "floor"  # outside build/: coop100 build owns that folder
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out: dict[str, Any] = {}
    try:
        with TreeSampler(os.getpid()) as sampler:
            timer = _stage_timer(out, sampler)
            with timer(PYARROW_FLOOR):
                floor.pyarrow_floor(root, work)
            for path in work.iterdir():
                path.unlink()
            with timer(SHELL_FLOOR):
                parts = floor.shell_and_zip(root, work, root / "build" / settings.DB_NAME)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out[SHELL_FLOOR]["parts"] = parts
    out[FULL_FLOOR] = {
        "seconds": round(out[PYARROW_FLOOR]["seconds"] + out[SHELL_FLOOR]["seconds"], 3),
        "peak_mb": max(out[PYARROW_FLOOR].get("peak_mb", 0), out[SHELL_FLOOR].get("peak_mb", 0)),
    }
    out["sqlite3 shell version"] = floor.shell_version()
    return out


def _child(mode: str, root: Path, statements: int) -> dict[str, Any]:
    done = run([sys.executable, str(HERE / "run.py"), mode, str(root)])
    if done["rc"] != 0:
        raise SystemExit(f"{mode[2:]} failed at {statements}:\n{done['output']}")
    result: dict[str, Any] = json.loads(done["output"].strip().splitlines()[-1])
    return result


# -- one size ----------------------------------------------------------------------------


def synthesise(statements: int, root: Path) -> dict[str, Any]:
    """synth.py's archive of that many statements at root, unless root/synth.json says so."""
    stamp = root / "synth.json"
    if stamp.exists() and (root / "records").is_dir():
        kept: dict[str, Any] = json.loads(stamp.read_text())
        if kept.get("rows", {}).get("statements") == statements:
            # Relative to the project, so results name no machine's folders.
            shown = stamp.relative_to(ROOT) if stamp.is_relative_to(ROOT) else stamp
            return {"rows": kept["rows"], "synth": {"kept": str(shown)}}
    stamp.unlink(missing_ok=True)
    synth = run(
        [sys.executable, str(HERE / "synth.py"), "--statements", str(statements)]
        + [
            "--out",
            str(root),
        ]
    )
    line = synth.pop("output").strip().splitlines()[-1]
    stamp.write_text(line + "\n")
    return {"rows": json.loads(line)["rows"], "synth": synth}


def bench_size(
    statements: int,
    frictionless_timeout: float,
    work: Path,
    reuse: dict[str, Any] | None = None,
    naive: bool = True,
    steps: bool = True,
    before: tuple[str, Path] | None = None,
    repeat: int = 1,
    validate: bool = True,
) -> dict[str, Any]:
    root = work / str(statements)
    result: dict[str, Any] = {
        "statements": statements,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit(),
        "machine": machine(),
        "load average at start": round(os.getloadavg()[0], 1),
        **synthesise(statements, root),
    }
    if steps:
        result |= _child("--stages", root, statements)
    if before:
        result |= _before_build(root, *before)
    coop100 = str(BIN / "coop100")
    # The floors right after each build, on the package it published; with repeat,
    # build and floors alternately, the fastest of each kept (other jobs on a
    # shared machine slow one run or the other: the ratio moved 1.2x-1.9x here).
    builds, runs = [], []
    for _ in range(repeat):
        outcome = run([coop100, "build", "--root", str(root)])
        if outcome["rc"] != 0:
            raise SystemExit(f"coop100 build failed at {statements}:\n{outcome['output']}")
        builds.append(outcome)
        runs.append(_child("--floors", root, statements))
    result["coop100 build"] = _fastest(builds)
    result["floors"] = min(runs, key=lambda done: float(done[FULL_FLOOR]["seconds"]))
    if repeat > 1:
        result["floors"][FULL_FLOOR]["runs"] = [done[FULL_FLOOR]["seconds"] for done in runs]
    # Against the code before, each twice, alternately, the faster kept: one run
    # of the same code on this shared machine moves by a fifth.
    ours, theirs = [], []
    for _ in range((2 if before else 1) if validate else 0):
        outcome = run([coop100, "validate", "--root", str(root)])
        if outcome["rc"] != 0:
            raise SystemExit(f"coop100 validate failed at {statements}:\n{outcome['output']}")
        ours.append(outcome)
        if before:
            theirs.append(_before_run(before[1], "validate", root))
    if ours:
        result["coop100 validate"] = _fastest(ours)
    if before and theirs:
        result[BEFORE_VALIDATE] = _fastest(theirs)
    if not naive:
        return _clean(result)
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
    db.unlink(missing_ok=True)
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


def _fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of runs' time, the highest of their peaks, and each run's seconds."""
    best = dict(min(runs, key=lambda entry: entry["seconds"]))
    if len(runs) > 1:
        best["runs"] = [entry["seconds"] for entry in runs]
        for peak in ("peak_tree_mb", "peak_mb"):
            best[peak] = max((entry.get(peak) or 0.0 for entry in runs), default=None)
    return best


def _before_run(src: Path, command: str, root: Path) -> dict[str, Any]:
    """`coop100 command` as the code in src (first on PYTHONPATH) runs it."""
    code = "from coop100.cli import cli; cli()"
    env = os.environ | {"PYTHONPATH": str(src)}
    outcome = run([sys.executable, "-c", code, command, "--root", str(root)], env=env)
    if outcome["rc"] != 0:
        raise SystemExit(f"coop100 {command} before failed at {root}:\n{outcome['output']}")
    outcome.pop("output")
    return outcome


def _before_build(root: Path, commit: str, src: Path) -> dict[str, Any]:
    """The build before, on the same records in a folder of its own (then deleted)."""
    other = root.parent / f"{root.name}-before"
    shutil.rmtree(other, ignore_errors=True)
    other.mkdir(parents=True)
    (other / "records").symlink_to((root / "records").resolve(), target_is_directory=True)
    try:
        outcome = _before_run(src, "build", other)
    finally:
        shutil.rmtree(other, ignore_errors=True)
    return {"before commit": commit, BEFORE_BUILD: outcome}


def _clean(result: dict[str, Any]) -> dict[str, Any]:
    result.setdefault("load average at end", round(os.getloadavg()[0], 1))
    for entry in result.values():
        if isinstance(entry, dict):
            entry.pop("output", None)
    return result


def _quiet(entry: dict[str, Any]) -> dict[str, Any]:
    # frictionless exits 1 on a valid package's warnings too; keep its verdict line only
    output = entry.pop("output", "")
    entry["valid"] = "VALID" in output.upper() and "INVALID" not in output.upper()
    return entry


def commit() -> str:
    """The git commit benchmarked, with +changes when the work tree differs from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "?"
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def startup(work: Path) -> dict[str, Any]:
    """The one-webinar package the tests freeze (tests/fixtures/records, so the figure
    stays comparable as the live records grow): `coop100 build` against importing its
    dependencies (best of 5)."""
    real = work / "real"
    shutil.rmtree(real, ignore_errors=True)
    shutil.copytree(REAL_RECORDS, real / "records")
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
def _cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    if entry.get("seconds") is None:
        if entry.get("timed_out_after"):
            return f"> {entry['timed_out_after']:.0f} s (stopped)"
        return entry.get("note", "–")
    peak = entry.get("peak_tree_mb") or entry.get("peak_mb")
    mark = " †" if entry.get("reused") else ""
    calls = f" ({entry['calls']} calls)" if entry.get("calls", 1) > 1 else ""
    if entry.get("runs"):
        calls = f" (best of {len(entry['runs'])})"
    if peak:
        return f"{entry['seconds']:.2f} s / {peak:.0f} MB{calls}{mark}"
    return f"{entry['seconds']:.2f} s{calls}{mark}"


def _names(sizes: list[dict[str, Any]], key: str) -> list[str]:
    """Every name under key across the sizes, in the order they first come."""
    names: dict[str, None] = {}
    for size in sizes:
        names |= dict.fromkeys(n for n, e in size.get(key, {}).items() if isinstance(e, dict))
    return list(names)


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def markdown(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    lines = [
        "# coop100 benchmark",
        "",
        f"Machine: {results['machine']}. Run {results['date']}.",
        "",
    ]
    lines += _targets_markdown(results.get("targets", []))
    lines += [
        "## Time and memory",
        "",
        "Each cell: wall time / peak memory. Memory is the peak of the summed RSS of the",
        "process and all its children (sampled ~20 times a second; pages two processes share",
        "count twice); for the build's steps, the peak during that step in the process that",
        "ran them. Steps are listed as `coop100.pipeline.build` names them, in order.",
        "",
        _row("stage", [f"{s['statements']:,} statements" for s in sizes]),
        "|" + " --- |" * (len(sizes) + 1),
    ]
    for name in _names(sizes, "stages"):
        lines.append(_row(name, [_cell(s.get("stages", {}).get(name)) for s in sizes]))
    lines.append(_row("validate package", [_cell(s.get("validate package")) for s in sizes]))
    lines.append(_row("**coop100 build**", [_cell(s.get("coop100 build")) for s in sizes]))
    lines.append(
        _row(
            "coop100 build: ru_maxrss (largest single process)",
            [_mb(s.get("coop100 build", {}).get("peak_mb")) for s in sizes],
        )
    )
    for name in _names(sizes, "floors"):
        label = f"floor: {name}" if name != FULL_FLOOR else f"**{FULL_FLOOR}**"
        lines.append(_row(label, [_cell(s.get("floors", {}).get(name)) for s in sizes]))
        if name == SHELL_FLOOR:
            for part in ("sqlite3 shell", "write zip"):
                lines.append(
                    _row(
                        f"floor: … {part}",
                        [
                            _cell(s.get("floors", {}).get(name, {}).get("parts", {}).get(part))
                            for s in sizes
                        ],
                    )
                )
    for name in ("coop100 validate", BEFORE_BUILD, BEFORE_VALIDATE, *NAIVE):
        if name in NAIVE or any(name in s for s in sizes):
            lines.append(_row(name, [_cell(s.get(name)) for s in sizes]))
    if any(BEFORE_BUILD in s for s in sizes):
        lines.append(_row("code before: commit", [s.get("before commit", "–") for s in sizes]))
    lines.append(_row("rows in all tables", [f"{sum(s['rows'].values()):,}" for s in sizes]))
    lines.append(
        _row("run (UTC), commit, load average", [_run(s, results["machine"]) for s in sizes])
    )
    lines += ["", "Ratios:", ""]
    lines.append(_row("ratio", [f"{s['statements']:,}" for s in sizes]))
    lines.append("|" + " --- |" * (len(sizes) + 1))
    for label, ratio in (
        ("build / full floor", _ratio("coop100 build", FULL_FLOOR)),
        ("build / pyarrow floor (CSV + Parquet only)", _ratio("coop100 build", PYARROW_FLOOR)),
        ("build µs per statement", _per_statement),
        ("build / build of the code before", _ratio("coop100 build", BEFORE_BUILD)),
        ("validate / validate of the code before", _ratio("coop100 validate", BEFORE_VALIDATE)),
        (
            "frictionless validate / coop100 validate",
            _ratio("naive: frictionless validate", "coop100 validate"),
        ),
    ):
        cells = [ratio(s) for s in sizes]
        if set(cells) != {"–"}:
            lines.append(_row(label, cells))
    versions = {s["floors"].get("sqlite3 shell version") for s in sizes if s.get("floors")}
    if versions - {None}:
        lines += ["", f"sqlite3 shell: {', '.join(sorted(v for v in versions if v))}."]
    if any(s.get(name, {}).get("reused") for s in sizes for name in NAIVE):
        lines += [
            "",
            "† baseline taken from an earlier run on the same seeded archive (`--naive-from`,",
            "or kept from results.json when this run skipped it); it runs none of our code.",
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


def _mb(value: float | None) -> str:
    return f"{value:.0f} MB" if value else "–"


def _run(size: dict[str, Any], machine: str | None = None) -> str:
    """When and at which commit a size ran, and where if not on machine."""
    where = f", on {size['machine']}" if machine and size.get("machine", machine) != machine else ""
    load = ""
    if "load average at start" in size:
        load = f", load {size['load average at start']}–{size.get('load average at end', '?')}"
    return f"{size.get('date', '?')}, {size.get('commit', '?')}{where}{load}"


def _entry(size: dict[str, Any], name: str) -> dict[str, Any]:
    if name in (FULL_FLOOR, PYARROW_FLOOR):
        found: dict[str, Any] = size.get("floors", {}).get(name, {})
        if not found and name == PYARROW_FLOOR:  # results from before floors had their own
            found = size.get("stages", {}).get(f"floor: {name}", {})
        return found
    entry: dict[str, Any] = size.get(name, {})
    return entry


def _seconds(size: dict[str, Any], name: str) -> float | None:
    value = _entry(size, name).get("seconds")
    return float(value) if value is not None else None


def _ratio(a: str, b: str) -> Any:
    def ratio(size: dict[str, Any]) -> str:
        top, bottom = _seconds(size, a), _seconds(size, b)
        if top is None and size.get(a, {}).get("timed_out_after") and bottom:
            return f"> {size[a]['timed_out_after'] / bottom:.0f}x"
        return f"{top / bottom:.2f}x" if top and bottom else "–"

    return ratio


def _per_statement(size: dict[str, Any]) -> str:
    seconds = _seconds(size, "coop100 build")
    return f"{seconds / size['statements'] * 1e6:.1f}" if seconds else "–"


# -- the targets ------------------------------------------------------------------


def _verdict(value: float | None, limit: float, strict: bool = False) -> str:
    if value is None:
        return "not measured"
    return "met" if (value < limit if strict else value <= limit) else "not met"


def _compared(value: float | None, before: float | None, unlike: bool = False) -> tuple[str, str]:
    """(ratio, verdict) of a figure against the same figure before the issue's work.

    unlike: the two were measured on different machines, so no verdict.
    """
    if value is None or not before:
        return "–", "not measured"
    ratio = value / before
    verdict = "met" if ratio <= 1 else f"within noise (≤ {NOISE}x)" if ratio <= NOISE else "not met"
    if unlike:
        verdict = "not comparable: measured on another machine"
    return f"{ratio:.2f}x", verdict


def _serving(results: dict[str, Any], out: Path) -> tuple[dict[str, Any] | None, str]:
    """The newest serving figures at 1M: this run's, or a serve*.json beside the results."""
    serve = results.get("serve")
    if serve and not serve.get("kept"):
        return serve, "this run"
    found = []
    if serve:
        found.append((str(serve.get("date", "")), "results.json", serve))
    for path in sorted(out.glob("serve*.json")):
        data = json.loads(path.read_text())
        if "before" in path.stem:  # the code before, for comparison (_serving_before)
            continue
        if isinstance(data.get("indexed"), dict) and data.get("statements", 0) >= TARGET_SIZE:
            found.append((str(data.get("date", "")), path.name, data))
    if not found:
        return None, "no serving results"
    date, name, data = max(found, key=lambda item: item[0])
    return data, f"{name}, run {date}"


def _serving_before(
    out: Path, serve: dict[str, Any] | None, before: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Serving figures of the code before: a serve*before*.json from the machine `serve`
    ran on (the newest), else those of before-issue14.json."""
    found = []
    for path in sorted(out.glob("serve*before*.json")):
        data = json.loads(path.read_text())
        if serve and data.get("machine") == serve.get("machine"):
            found.append((str(data.get("date", "")), path.name, data))
    if found:
        date, name, data = max(found, key=lambda item: item[0])
        return data, f"before: {name}, run {date}"
    return before.get("serve") or {}, f"before: {BEFORE.name}, run {before.get('date', '?')}"


def _p95(pages: dict[str, Any], page: str) -> float | None:
    value = pages.get(page, {}).get("p95_ms")
    return float(value) if value is not None else None


def targets(results: dict[str, Any], out: Path) -> list[dict[str, str]]:
    """The issue's targets: each with what was measured, where from, and met or not."""
    by_size = {s["statements"]: s for s in results["sizes"]}
    rows: list[dict[str, str]] = []

    def add(target: str, measured: str, verdict: str, source: str = "") -> None:
        rows.append({"target": target, "measured": measured, "verdict": verdict, "source": source})

    one = by_size.get(TARGET_SIZE)
    where = f"1M run {_run(one)}" if one else "no 1M run in results.json"
    build = _seconds(one, "coop100 build") if one else None
    full = _seconds(one, FULL_FLOOR) if one else None
    ratio = build / full if build and full else None
    add(
        f"`coop100 build` ≤ {BUILD_OVER_FLOOR}x its full floor at 1M",
        f"{build:.1f} s / {full:.1f} s = {ratio:.2f}x" if ratio and build and full else "–",
        _verdict(ratio, BUILD_OVER_FLOOR),
        where,
    )
    add(
        f"`coop100 build` at 1M ≤ ~{BUILD_SECONDS:.0f} s",
        f"{build:.1f} s" if build else "–",
        _verdict(build, BUILD_SECONDS),
        where,
    )
    peak = _tree_peak(one)
    add(
        f"peak memory of the build at 1M ≤ {PEAK_MB:.0f} MB (1 GiB), summed over its processes",
        _mb(peak),
        _verdict(peak, PEAK_MB),
        where,
    )
    large = by_size.get(LARGE_SIZE)
    large_peak = _tree_peak(large)
    if large and one:
        same = large.get("date") == one.get("date")
        source = f"10M run {_run(large)}; 1M " + ("same run" if same else f"run {_run(one)}")
    else:
        source = "needs both 1M and 10M in results.json (make bench-10m)"
    growth = large_peak / peak if large_peak and peak else None
    add(
        f"peak at 10M ≤ {LARGE_OVER_TARGET_PEAK}x peak at 1M",
        f"{_mb(large_peak)} / {_mb(peak)} = {growth:.2f}x" if growth else "–",
        _verdict(growth, LARGE_OVER_TARGET_PEAK),
        source,
    )
    serve, served_from = _serving(results, out)
    pages = serve["indexed"] if serve else {}
    for page in SEARCH_PAGES:
        p95 = _p95(pages, page)
        add(
            f"`{page}` at 1M: p95 < {SEARCH_P95_MS:.0f} ms",
            f"{p95:.1f} ms" if p95 is not None else "–",
            _verdict(p95, SEARCH_P95_MS, strict=True),
            served_from,
        )
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else {}
    before_one = {s["statements"]: s for s in before.get("sizes", [])}.get(TARGET_SIZE)
    before_serve, before_from = _serving_before(out, serve, before)
    before_pages = before_serve.get("indexed", {})
    unlike = bool(serve and serve.get("machine", "?") != before_serve.get("machine", "?"))
    shown, verdict = _compared(_p95(pages, RARE_SEARCH), _p95(before_pages, RARE_SEARCH), unlike)
    add(f"`{RARE_SEARCH}` p95 not slower", shown, verdict, f"{served_from}; {before_from}")
    worst: tuple[float, str] | None = None
    for page, entry in pages.items():
        was = before_pages.get(page)
        if not isinstance(entry, dict) or not isinstance(was, dict) or "search" in page:
            continue
        now, then = _p95(pages, page), _p95(before_pages, page)
        if now and then:
            worst = max(worst or (0.0, ""), (now / then, page))
    if worst:
        shown, verdict = _compared(worst[0], 1.0, unlike)
        shown = f"{shown} (worst: {worst[1]})"
    else:
        shown, verdict = "–", "not measured"
    add("every other page's p95 not slower", shown, verdict, f"{served_from}; {before_from}")
    validate = _seconds(one, "coop100 validate") if one else None
    if one and one.get(BEFORE_VALIDATE):
        was = _seconds(one, BEFORE_VALIDATE)
        source = f"{where}, against the code at {one['before commit']} in the same run"
        unlike = False
    elif one and before_one and one.get("date") == before.get("date"):
        was, source, unlike = None, f"{where} is the run before itself", False
    else:
        was = _seconds(before_one, "coop100 validate") if before_one else None
        source = f"{where}; {before_from}"
        unlike = bool(one and before_one and one.get("machine") != before.get("machine"))
    shown, verdict = _compared(validate, was, unlike)
    if validate and was:
        shown = f"{validate:.1f} s vs {was:.1f} s: {shown}"
    add("`coop100 validate` at 1M not slower", shown, verdict, source)
    start = results.get("startup")
    add(
        f"start-up ratio ≤ {STARTUP_RATIO}",
        f"{start['ratio']}" if start else "–",
        _verdict(start["ratio"] if start else None, STARTUP_RATIO),
        f"run {start.get('date', results['date'])}" if start else "not run (--skip-startup)",
    )
    return rows


def _tree_peak(size: dict[str, Any] | None) -> float | None:
    """The build's summed peak; an older result without one has only ru_maxrss (too low)."""
    if not size:
        return None
    entry = size.get("coop100 build", {})
    value = entry.get("peak_tree_mb")
    return float(value) if value else None


def _targets_markdown(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return []
    lines = [
        '## Targets (issue "Close to the limit")',
        "",
        "| target | measured | verdict | from |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['target']} | {r['measured']} | **{r['verdict']}** | {r['source']} |" for r in rows
    ]
    return [*lines, ""]


# -- main ----------------------------------------------------------------------------------


def earlier_run(results: dict[str, Any]) -> dict[str, Any]:
    """A results.json read back: each size, the start-up and serving say their run and machine."""
    when, where = results.get("date", "?"), results.get("machine", "?")
    for entry in [*results.get("sizes", []), results.get("startup"), results.get("serve")]:
        if entry:
            entry.setdefault("date", when)
            entry.setdefault("machine", where)
    for key in ("startup", "serve"):
        if results.get(key):
            results[key]["kept"] = True
    return results


def merged(previous: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """results with what previous measured and this run did not: other sizes, start-up, serving."""
    previous = earlier_run(previous)
    ran = {s["statements"] for s in results["sizes"]}
    earlier = {s["statements"]: s for s in previous.get("sizes", [])}
    for size in results["sizes"]:
        # Baselines skipped (--skip-naive) keep an earlier run's: they run none of
        # our code, on the same seeded archive.
        for name in NAIVE:
            if name not in size and name in earlier.get(size["statements"], {}):
                size[name] = dict(earlier[size["statements"]][name]) | {"reused": True}
    kept = [s for s in previous.get("sizes", []) if s["statements"] not in ran]
    results["sizes"] = sorted(kept + results["sizes"], key=lambda s: s["statements"])
    for key in ("startup", "serve"):
        if not results.get(key) and previous.get(key):
            results[key] = previous[key]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--frictionless-timeout", type=float, default=900, help="seconds before stopping it"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=WORK, help="where archives are written")
    parser.add_argument(
        "--naive-from", type=Path, help="reuse the naive baselines of this results.json per size"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the build and the floors this many times alternately, the fastest kept",
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also build and validate with the code at git REF, on the same records",
    )
    for flag, text in (
        ("--skip-startup", "skip the start-up floor"),
        ("--skip-naive", "skip the naive baselines (hours at 10M)"),
        ("--skip-steps", "skip the build timed step by step (the whole build still runs)"),
        (
            "--skip-validate",
            "skip coop100 validate (at 10M it reads whole tables and compares a rebuild)",
        ),
        ("--fresh", "drop the sizes earlier runs left in results.json"),
        ("--serve", "then load-test serving the largest size (wrk)"),
        ("--report", "run nothing: write results.md and its targets again from results.json"),
    ):
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument("--stages", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floors", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages:
        print(json.dumps(stages(args.stages)))
        return
    if args.floors:
        print(json.dumps(floors(args.floors)))
        return
    if args.report:
        write(earlier_run(json.loads((args.out / "results.json").read_text())), args.out)
        return
    try:
        floor.sqlite3_shell()
    except floor.FloorError as exc:
        raise SystemExit(f"benchmarks/run.py: {exc}") from None
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "startup": None if args.skip_startup else startup(args.work),
        "sizes": [],
    }
    if results["startup"]:
        results["startup"] |= {"date": results["date"], "machine": results["machine"]}
    before = None
    if args.before:
        shutil.rmtree(args.work / "before", ignore_errors=True)
        (args.work / "before").mkdir(parents=True)
        before = baseline_source(args.before, args.work / "before")
        if before is None:
            raise SystemExit(f"benchmarks/run.py: no code at git ref {args.before!r}")
    earlier = {}
    if args.naive_from:
        earlier = {s["statements"]: s for s in json.loads(args.naive_from.read_text())["sizes"]}
    for size in args.sizes:
        results["sizes"].append(
            bench_size(
                size,
                args.frictionless_timeout,
                args.work,
                earlier.get(size),
                naive=not args.skip_naive,
                steps=not args.skip_steps,
                before=before,
                repeat=args.repeat,
                validate=not args.skip_validate,
            )
        )
        print(json.dumps(results["sizes"][-1], indent=1)[:3000], file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.serve:
        largest = args.work / str(max(args.sizes))
        command = [sys.executable, str(HERE / "serve_load.py"), "--root", str(largest)]
        # 10 s a page: a few hundred requests each, enough for a steady p95.
        serve_args = ["--baseline", "--seconds", "10", "--out", str(args.out)]
        subprocess.run([*command, *serve_args], check=True)
        results["serve"] = json.loads((args.out / "serve.json").read_text())
        results["serve"].setdefault("machine", results["machine"])
    previous = args.out / "results.json"
    if previous.exists() and not args.fresh:
        results = merged(json.loads(previous.read_text()), results)
    write(results, args.out)


def write(results: dict[str, Any], out: Path) -> None:
    """results.json and results.md under out, with the targets worked out anew."""
    results["targets"] = targets(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
