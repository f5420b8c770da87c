"""Every case in tests/bad_records/ fails `coop100 build` with exactly its expected errors.

A case is a small YAML file: `why` it matters, the records `file` it changes and
how (`replace` exact text that occurs once, or give the whole `content`, or
`remove` the file; `encoding` saves it as, say, latin-1), and the exact `errors`
lines the command must print. Each case is applied to a copy of the real records.

After a deliberate change to the records or the messages, rewrite the expected
errors with `make bad-records` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from coop100.cli import cli
from tests.conftest import RECORDS

CASES_DIR = Path(__file__).parents[1] / "bad_records"
CASES = sorted(CASES_DIR.glob("*.yaml"))
REWRITE = os.environ.get("COOP100_REWRITE_BAD_RECORDS") == "1"
# `coop100 validate` also runs frictionless over the published package, which
# takes a second or two, so it runs over a sample that covers each kind of check.
VALIDATE_SAMPLE = {
    "yaml-syntax",
    "not-utf8",
    "wrong-type",
    "dangling-person-names-person-id",
    "two-preferred-names",
    "org-parent-loop",
}


class _CaseDumper(yaml.SafeDumper):
    """Writes multi-line text as a block, so a case reads like the records it changes."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CaseDumper.add_representer(str, _str)


def _load(case: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(case.read_text(encoding="utf-8"))
    return data


def apply_case(case: dict[str, Any], records: Path) -> None:
    """Change the copy of the records in `records` as the case says."""
    path = records / case["file"]
    path.parent.mkdir(exist_ok=True)  # records/bulk/ for a JSON Lines case
    if case.get("remove"):
        path.unlink()
        return
    if "content" in case:
        text = case["content"]
    else:
        text = path.read_text(encoding="utf-8")
    for change in case.get("replace", []):
        found = text.count(change["old"])
        assert found == 1, f"{change['old']!r} occurs {found} times in {case['file']}"
        text = text.replace(change["old"], change["new"])
    # newline="" keeps any \r the case writes on purpose.
    with path.open("w", encoding=case.get("encoding", "utf-8"), newline="") as handle:
        handle.write(text)


def _run(command: str, root: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, [command, "--root", str(root)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a bug, whatever the input
    return result.exit_code, result.stderr.splitlines()


def test_the_corpus_is_large_and_documented() -> None:
    assert len(CASES) >= 30
    for case in CASES:
        data = _load(case)
        assert set(data) <= {"why", "file", "replace", "content", "encoding", "remove", "errors"}
        assert data["why"] and data["errors"], case.name


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_build_reports_exactly_the_expected_errors(case: Path, tmp_path: Path) -> None:
    data = _load(case)
    shutil.copytree(RECORDS, tmp_path / "records")
    apply_case(data, tmp_path / "records")
    exit_code, lines = _run("build", tmp_path)
    if REWRITE:
        data["errors"] = lines[:-1]
        text = yaml.dump(data, Dumper=_CaseDumper, sort_keys=False, allow_unicode=True, width=1000)
        case.write_text(text, encoding="utf-8")
    expected = data["errors"]
    assert lines == [
        *expected,
        f"{len(expected)} problem(s): nothing was published; fix the records above",
    ]
    assert exit_code == 1
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("name", sorted(VALIDATE_SAMPLE))
def test_validate_reports_the_same_errors(name: str, fresh_build: Path, tmp_path: Path) -> None:
    data = _load(CASES_DIR / f"{name}.yaml")
    root = tmp_path / "project"
    shutil.copytree(fresh_build, root)
    apply_case(data, root / "records")
    exit_code, lines = _run("validate", root)
    expected = data["errors"]
    assert lines == [*expected, f"{len(expected)} problem(s): the package is not valid"]
    assert exit_code == 1


# -- the same cases as JSON Lines -------------------------------------------------------

# Cases with no JSON Lines form, and why: what they break is YAML's own (its bytes,
# syntax or layout), or a file that stays YAML (sources feed datapackage.json).
YAML_ONLY = {
    "bom": "a byte-order mark at the start of a YAML file",
    "tab": "a tab in YAML indentation",
    "duplicate-key": "a key repeated in a YAML mapping (JSON Lines rows are read by pyarrow)",
    "yaml-syntax": "YAML syntax",
    "not-utf8": "the encoding of a YAML file",
    "control-character-raw": "a raw control character, which the YAML reader refuses",
    "empty-file": "a YAML file with nothing in it",
    "comments-only": "a YAML file holding only comments",
    "not-a-mapping": "the top level of a YAML file",
    "record-not-a-mapping": "a YAML list item that is not a mapping",
    "unknown-top-level-key": "a table name inside a YAML file",
    "record-in-wrong-file": "which YAML file holds which table",
    "missing-file": "a YAML records file missing",
    "unknown-file": "a file in records/ that is not a records file",
    "bad-date": "sources, which stay YAML",
    "bad-url": "sources, which stay YAML",
    "impossible-date": "sources, which stay YAML",
    "dangling-sources-publisher-organisation-id": "sources, which stay YAML",
    "unknown-key-with-punctuation": "a table name inside a YAML file",
    "yaml-alias-bomb": "YAML anchors and aliases",
    "yaml-tag": "an explicit YAML tag",
    "yaml-deep-nesting": "YAML nesting (bulk-deep-nesting is its JSON Lines twin)",
    "yaml-huge-integer": "how the YAML reader reads a number (see bulk-integer-beyond-int64)",
    "yaml-integer-beyond-int64": "how the YAML reader reads a number (see bulk-integer-…)",
    "yaml-lone-surrogate": "a YAML escape (bulk-lone-surrogate is its JSON Lines twin)",
    "yaml-too-many-keys": "a YAML mapping's keys (bulk-too-many-keys is its JSON Lines twin)",
    "event-file-misnamed": "the name of a YAML event file",
    "package-missing": "records/package.yaml, which stays YAML",
    "package-unknown-field": "records/package.yaml, which stays YAML",
}


# Cases whose JSON Lines form names the same record and field in other words, and why.
BULK_WORDING = {
    "blank-statement": "pyarrow reads a JSON null and a missing key alike: 'is required'",
}


def _move_to_bulk(records: Path, name: str) -> bool:
    """Move the tables of records/<name> to records/bulk/<table>.jsonl; False if it cannot."""
    from coop100.read.bulk import BULK_TABLES
    from coop100.read.records import _read_yaml

    data, problems = _read_yaml(records / name, name)
    if problems or not isinstance(data, dict) or not set(data) <= set(BULK_TABLES):
        return False
    (records / "bulk").mkdir(exist_ok=True)
    for table, rows in data.items():
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (records / "bulk" / f"{table}.jsonl").write_text(lines, encoding="utf-8")
    (records / name).write_text("".join(f"{table}: []\n" for table in data), encoding="utf-8")
    return True


def _unplaced(line: str) -> str:
    """A problem line without its file:line:column, nor the one it points at."""
    line = re.sub(r"\(first at records/[^:]+:\d+\)", "(first at …)", line)
    return re.sub(r"^records/[^:]+(?::\d+:\d+)?: ", "", line)


@pytest.mark.parametrize(
    # bulk-*: cases of a JSON Lines file itself, with no YAML form to move.
    "case",
    [c for c in CASES if c.stem not in YAML_ONLY and not c.stem.startswith("bulk-")],
    ids=lambda p: p.stem,
)
def test_bulk_reports_the_same_errors_as_yaml(case: Path, tmp_path: Path) -> None:
    data = _load(case)
    shutil.copytree(RECORDS, tmp_path / "records")
    apply_case(data, tmp_path / "records")
    assert _move_to_bulk(tmp_path / "records", data["file"]), "list it in YAML_ONLY, saying why"
    exit_code, lines = _run("build", tmp_path)
    assert exit_code == 1
    found, expected = sorted(map(_unplaced, lines[:-1])), sorted(map(_unplaced, data["errors"]))
    if case.stem in BULK_WORDING:
        found, expected = [f.split(": ")[0] for f in found], [e.split(": ")[0] for e in expected]
    assert found == expected


@pytest.mark.parametrize("name", sorted(VALIDATE_SAMPLE))
def test_an_empty_bulk_folder_changes_no_message(name: str, tmp_path: Path) -> None:
    data = _load(CASES_DIR / f"{name}.yaml")
    shutil.copytree(RECORDS, tmp_path / "records")
    (tmp_path / "records" / "bulk").mkdir()
    apply_case(data, tmp_path / "records")
    assert _run("build", tmp_path)[1][:-1] == data["errors"]
