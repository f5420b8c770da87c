"""The README and the documentation pages (docs/) document every command and target, and
their loading snippets run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import duckdb
import pytest

from coop100.cli import cli
from tests.conftest import ROOT
from tests.site_fixtures import fixture_package

# What a reader sees: the README and every page of the documentation site. A page
# that includes part of the README (`--8<--`) is checked where the part is written.
PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
}
MAKE_TARGETS_PAGE = "docs/reference/make.md"


def _blocks(language: str) -> list[str]:
    return [
        block
        for text in PAGES.values()
        for block in re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)
    ]


def test_the_docs_mention_every_command() -> None:
    for name in cli.commands:
        assert any(f"coop100 {name}" in text for text in PAGES.values()), name


def test_the_docs_list_every_make_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z-]+):.*## ", makefile, flags=re.M)
    assert targets
    for target in targets:
        assert f"`make {target}`" in PAGES[MAKE_TARGETS_PAGE], target


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
        exec(snippet, namespace)  # noqa: S102 - our own docs
    finally:
        os.chdir(cwd)
    assert len(namespace["statements"]) == 16  # type: ignore[arg-type]


@pytest.mark.parametrize("snippet", [b for b in _blocks("python") if SITE in b])
def test_http_snippets_run_against_the_served_site(snippet: str, served: tuple[str, int]) -> None:
    namespace: dict[str, object] = {}
    exec(snippet.replace(SITE, served[0]), namespace)  # noqa: S102 - our own docs
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


@pytest.mark.parametrize("sql", _blocks("sql"))
def test_duckdb_snippet_runs(sql: str) -> None:
    con = duckdb.connect()
    cwd = os.getcwd()
    os.chdir(fixture_package())  # the snippet's paths are relative, as a reader runs it
    try:
        rows = con.execute(sql).fetchall()
    finally:
        os.chdir(cwd)
    assert ("Anna Biondi",) in {row[:1] for row in rows}
    assert len(rows) == 15  # every statement a person made (one is the publisher's)


@pytest.mark.parametrize(
    "shell", [b for b in _blocks("sh") if "frictionless validate" in b and READS_SITE not in b]
)
def test_frictionless_snippet_runs(shell: str) -> None:
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
