"""The GitHub workflow is valid, and each of its `run:` steps passes here as CI runs it.

Every workflow file is checked against GitHub's workflow schema, as vendored in
the pinned check-jsonschema package (no network). Then each job of ci.yml runs
in its own fresh `git clone` of this repository (its last commit, as CI sees
it): every `run:` step in order, with `bash --noprofile --norc -eo pipefail`
(GitHub's command for `shell: bash`), the environment GitHub gives (CI,
GITHUB_WORKSPACE, GITHUB_STEP_SUMMARY in a temporary file, a pull request's
GITHUB_EVENT_NAME) and the workflow's own `env:`. A step that cannot run here
must be listed in NOT_RUN_HERE with the reason; any other step the test cannot
run fails it.

`.ci/run` ends in `make test`, which runs this test again. So the nested run
gets PYTEST_ADDOPTS="--collect-only -q" (pytest reads it from the environment;
nothing in .ci/run or the Makefile knows): the fresh clone still installs every
pinned dependency, runs ruff and mypy --strict, and imports and collects every
test, each of which fails the step when broken, but runs no test a second time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from coop100.cli import cli
from tests.conftest import RECORDS, ROOT
from tests.e2e.test_bad_records import CASES_DIR, _load, apply_case

# End to end (real processes, servers, browsers): `make test-all` and CI run it.
pytestmark = pytest.mark.slow

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
CI = ROOT / ".github" / "workflows" / "ci.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"

# Steps that use an action, by the action: why the test does not run them here.
NOT_RUN_HERE = {
    "actions/checkout@v4": "GitHub's checkout action: the test makes its own fresh git clone",
}
# The `if:` conditions the test can decide: it plays a pull request.
EVENT = "pull_request"
CONDITIONS = {f"github.event_name == '{EVENT}'": True}
# GitHub's command for `shell: bash` (the workflow's default).
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
# Variables of the machine running this test that must not reach the steps: make's
# (a nested make would join this one's job server), pytest's, the venv's.
_HOST_ONLY = re.compile(r"(MAKE|MFLAGS|PYTEST_|VIRTUAL_ENV|GITHUB_|COOP100_)")


def _workflow(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def _check_schema(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, check=False)


def test_every_workflow_matches_githubs_schema() -> None:
    assert CI in WORKFLOWS
    result = _check_schema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    text = CI.read_text(encoding="utf-8").replace("runs-on:", "runs_on:", 1)
    broken.write_text(text, encoding="utf-8")
    result = _check_schema(broken)
    assert result.returncode == 1
    assert "runs_on" in result.stdout


def test_the_workflow_runs_in_debian_bookworm_as_root() -> None:
    # .ci/run apt-gets Debian's chromium and wrk, and the browser tests look for
    # /usr/bin/chromium: on GitHub's Ubuntu runner, as its non-root user, neither works.
    for name, job in _workflow(CI)["jobs"].items():
        container = job["container"]
        if isinstance(container, str):
            container = {"image": container}
        assert container["image"] == "python:3.11-bookworm", name
        assert "--user" not in container.get("options", ""), name


def _environment(clone: Path, summary: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _HOST_ONLY.match(k)}
    return {
        **env,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": EVENT,
        "GITHUB_WORKSPACE": str(clone),
        "GITHUB_STEP_SUMMARY": str(summary),
        # `git config --global` in a step writes here, not to this machine's ~/.gitconfig.
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "RUNNER_TEMP": str(home),
        # The nested `make test` of .ci/run collects the suite without running it.
        "PYTEST_ADDOPTS": "--collect-only -q",
    }


def _plan(workflow: dict[Any, Any], job: dict[Any, Any]) -> list[tuple[str, Any, str]]:
    """Every step as (name, step, why not run here or ""); fails on a step it cannot place."""
    assert workflow.get("defaults", {}).get("run", {}).get("shell") == "bash"
    plan = []
    for number, step in enumerate(job["steps"], 1):
        name = step.get("name") or step.get("uses") or f"step {number}"
        if "uses" in step:
            assert step["uses"] in NOT_RUN_HERE, f"{name}: an action this test cannot run"
            plan.append((name, step, NOT_RUN_HERE[step["uses"]]))
            continue
        assert "run" in step, f"{name}: neither `run` nor `uses`"
        assert set(step) <= {"name", "run", "if", "env", "working-directory"}, name
        assert "${{" not in step["run"], f"{name}: give expressions to the script by `env:`"
        condition = step.get("if")
        assert condition is None or condition in CONDITIONS, f"{name}: unknown `if: {condition}`"
        if condition is not None and not CONDITIONS[condition]:
            plan.append((name, step, f"`if: {condition}` is false for a {EVENT}"))
        else:
            plan.append((name, step, ""))
    return plan


@pytest.mark.parametrize("job_name", sorted(_workflow(CI)["jobs"]))
def test_each_run_step_passes_in_a_fresh_clone(job_name: str, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    workflow = _workflow(clone / ".github" / "workflows" / "ci.yml")
    job = workflow["jobs"][job_name]
    summary = tmp_path / "summary.md"
    summary.touch()
    env = _environment(clone, summary, tmp_path)
    env |= {k: str(v) for k, v in {**workflow.get("env", {}), **job.get("env", {})}.items()}
    for name, step, not_run in _plan(workflow, job):
        if not_run:
            warnings.warn(f"{job_name} / {name}: not run here: {not_run}", stacklevel=1)
            continue
        script = tmp_path / "step.sh"
        script.write_text(step["run"], encoding="utf-8")
        result = subprocess.run(
            [*BASH, str(script)],
            cwd=clone / step.get("working-directory", "."),
            env=env | {k: str(v) for k, v in step.get("env", {}).items()},
            capture_output=True,
            text=True,
            check=False,
        )
        output = (result.stdout + result.stderr).splitlines()
        assert result.returncode == 0, "\n".join([f"{job_name} / {name}:", *output[-60:]])
    _check_outputs(job_name, clone, summary.read_text(encoding="utf-8"))


def _check_outputs(job_name: str, clone: Path, summary: str) -> None:
    """What each job must have left: the data job its summary, the test job its venv."""
    if job_name == "data":
        assert "### coop100 validate: valid: records, checksums" in summary
        assert "### coop100 build: wrote build/coop100.db and build/coop100.zip" in summary
        assert "### What this change does to the published data" in summary
    else:
        assert (clone / ".venv" / "bin" / "frictionless").exists()
    shutil.rmtree(clone / ".venv", ignore_errors=True)


# -- the documentation's samples of what a contributor sees ---------------------------

SAMPLES_PAGE = ROOT / "docs" / "contributing" / "ci.md"
SAMPLE = re.compile(
    r"<!-- sample: (?P<command>[^|]+?) \| (?P<case>[^|]*?) \| (?P<stream>\w+) -->\n"
    r"```\w+\n(?P<body>.*?)```",
    flags=re.S,
)
SAMPLES = list(SAMPLE.finditer(SAMPLES_PAGE.read_text(encoding="utf-8")))


def _run_sample(command: str, case: str, tmp_path: Path) -> dict[str, str]:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    if case == "-":  # a script of this repository, run where it stands
        bin_dir = Path(sys.executable).parent
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=os.environ | env | {"COOP100": str(bin_dir / "coop100")},
            capture_output=True,
            text=True,
            check=False,
        )
        return {"stdout": done.stdout, "stderr": done.stderr}
    root = tmp_path / "project"
    shutil.copytree(RECORDS, root / "records")  # the cases' frozen records
    apply_case(_load(CASES_DIR / f"{case}.yaml"), root / "records")
    program, *args = command.split()
    assert program == "coop100"
    result = CliRunner().invoke(cli, [*args, "--root", str(root)], env=env)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    written = summary.read_text(encoding="utf-8") if summary.exists() else ""
    return {"stdout": result.stdout, "stderr": result.stderr, "summary": written}


def test_the_docs_show_each_output() -> None:
    shown = {(m["command"].split(" --format ")[-1], m["stream"]) for m in SAMPLES}
    assert {("coop100 build", "stderr"), ("github", "stdout"), ("github", "summary")} <= shown
    assert {("json", "stdout"), (".ci/data-diff HEAD", "stdout")} <= shown


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda m: f"{m['command']} {m['stream']}")
def test_a_docs_sample_is_the_real_output(sample: re.Match[str], tmp_path: Path) -> None:
    outputs = _run_sample(sample["command"], sample["case"], tmp_path)
    assert outputs[sample["stream"]] == sample["body"], (
        f"{SAMPLES_PAGE.relative_to(ROOT)}'s sample of `{sample['command']}` ({sample['stream']}) "
        "is out of date; "
        f"the real output is:\n{outputs[sample['stream']]}"
    )


def test_the_data_diff_shows_a_real_edit(tmp_path: Path) -> None:
    """`.ci/data-diff` on a commit that rewords a statement shows its text old -> new."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    statements = clone / "records" / "events" / "ilo-coop-100-launch-webinar.yaml"
    old = "Opened the webinar with an introduction"
    new = "Opened the webinar, 100% online, with an introduction"
    statements.write_text(statements.read_text(encoding="utf-8").replace(old, new, 1), "utf-8")
    coop100 = str(Path(sys.executable).parent / "coop100")
    built = subprocess.run([coop100, "build", "--root", str(clone)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    git = ["git", "-c", "user.name=CI", "-c", "user.email=ci@example.org", "-C", str(clone)]
    subprocess.run([*git, "commit", "--quiet", "--all", "--message", "reword"], check=True)
    shown = subprocess.run(
        ["bash", str(clone / ".ci" / "data-diff"), "HEAD^1"],
        env=os.environ | {"COOP100": coop100},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.startswith("### What this change does to the published data\n\n#### Changes ")
    # One row changed, however many the live records hold.
    assert re.search(r"^\| `statements` \| (\d+) \| \1 \| 0 \| 0 \| 1 \| 0 \|$", shown, re.M)
    assert f"| esim-introduction | `text` | {old}" in shown
    assert f"| {new}" in shown
    worktrees = subprocess.run([*git, "worktree", "list"], capture_output=True, text=True)
    assert len(worktrees.stdout.splitlines()) == 1  # the base's worktree is gone


# --- .ci/install-tools: each missing tool on its own, checked by Debian's resolver ---

INSTALL_TOOLS = ROOT / ".ci" / "install-tools"
EVERY_TOOL = "chromium wrk curl nginx sqlite3"


def _apt_lists() -> None:
    """Debian's package lists, fetched once if this machine has none yet (CI is root)."""
    if not shutil.which("apt-get"):
        pytest.skip("not a Debian machine: apt-get is missing")
    if not any(Path("/var/lib/apt/lists").glob("*_Packages*")):
        if os.geteuid() != 0:
            pytest.skip("no apt lists and not root to fetch them")
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)


def _simulate(missing: str, *apt_options: str) -> subprocess.CompletedProcess[str]:
    command = [str(INSTALL_TOOLS), "--simulate", "--missing", missing, "--", *apt_options]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_the_install_step_resolves_in_an_empty_debian(tmp_path: Path) -> None:
    """The workflow's container has none of the tools: every package resolves there."""
    _apt_lists()
    empty = tmp_path / "status"
    empty.write_text("")
    result = _simulate(EVERY_TOOL, "-o", f"Dir::State::status={empty}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == [f"{t} {t}: resolves" for t in EVERY_TOOL.split()]


def test_each_tool_resolves_here_on_its_own() -> None:
    """This machine as Debian sees it: every tool resolves beside what is installed."""
    _apt_lists()
    result = _simulate(EVERY_TOOL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == [f"{t} {t}: resolves" for t in EVERY_TOOL.split()]
