"""The README documents every command and target, and its loading snippets run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import duckdb
import pytest

from coop100.cli import cli

from .conftest import ROOT
from .site_fixtures import fixture_package

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_mentions_every_command() -> None:
    for name in cli.commands:
        assert f"coop100 {name}" in README, name


def test_readme_lists_every_make_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z-]+):.*## ", makefile, flags=re.M)
    assert targets
    for target in targets:
        assert f"`make {target}`" in README, target


# Snippets that read the served site name it at its default address.
SITE = "http://127.0.0.1:8001"
READS_SITE = f"{SITE}/data/"


@pytest.mark.parametrize(
    "snippet", [b for b in _blocks("python") if SITE not in b], ids=lambda s: s.split()[1]
)
def test_python_snippets_run(snippet: str) -> None:
    namespace: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(fixture_package())
    try:
        exec(snippet, namespace)  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    assert len(namespace["statements"]) == 16  # type: ignore[arg-type]


@pytest.mark.parametrize("snippet", [b for b in _blocks("python") if SITE in b])
def test_http_snippets_run_against_the_served_site(snippet: str, served: tuple[str, int]) -> None:
    namespace: dict[str, object] = {}
    exec(snippet.replace(SITE, served[0]), namespace)  # noqa: S102 - our own README
    assert len(namespace["statements"]) == 16  # type: ignore[arg-type]


def test_http_shell_snippets_run_against_the_served_site(served: tuple[str, int]) -> None:
    (shell,) = [b for b in _blocks("sh") if READS_SITE in b]
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for line in shell.strip().splitlines():
        result = subprocess.run(
            line.replace(SITE, served[0]), shell=True, env=env, capture_output=True, check=False
        )
        assert result.returncode == 0, (line, result.stderr)
    assert result.stdout == b"PAR1"  # the last four bytes of any Parquet file


def test_duckdb_snippet_runs() -> None:
    (sql,) = _blocks("sql")
    con = duckdb.connect()
    cwd = os.getcwd()
    os.chdir(fixture_package())  # the snippet's paths are relative, as a reader runs it
    try:
        rows = con.execute(sql).fetchall()
    finally:
        os.chdir(cwd)
    assert ("Anna Biondi",) in {row[:1] for row in rows}
    assert len(rows) == 15  # every statement a person made (one is the publisher's)


def test_frictionless_snippet_runs() -> None:
    (shell,) = [b for b in _blocks("sh") if "frictionless validate" in b and READS_SITE not in b]
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for line in shell.strip().splitlines():
        result = subprocess.run(
            line,
            shell=True,
            cwd=fixture_package(),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (line, result.stderr)
    assert "esim-introduction" in result.stdout
