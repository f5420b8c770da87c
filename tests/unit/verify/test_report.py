"""`--format github` and `--format json` report the bad-records corpus exactly.

Every case of tests/bad_records/ is built in both formats: the JSON findings,
put back together, must give the case's expected text lines, and each workflow
command, unescaped as GitHub's runner does, must give the same finding. A few
cases are also compared with their full output written out here, among them the
two whose messages and titles hold commas, colons, percent signs and line breaks.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from coop100.cli import cli
from coop100.report import JSON_FIELDS
from tests.conftest import RECORDS
from tests.e2e.test_bad_records import CASES, CASES_DIR, _load, apply_case


def _build(case: Path, tmp_path: Path, *args: str) -> tuple[Result, str]:
    root = tmp_path / "project"
    shutil.copytree(RECORDS, root / "records")
    apply_case(_load(case), root / "records")
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        cli,
        ["build", "--root", str(root), *args],
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 1
    return result, summary.read_text(encoding="utf-8") if summary.exists() else ""


def _unescape(value: str) -> str:
    """What GitHub's runner reads back from an escaped workflow-command value."""
    for escaped, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        value = value.replace(escaped, char)
    return value


def _parse_command(line: str) -> tuple[dict[str, str], str]:
    match = re.fullmatch(r"::error (?P<props>[^:]*)::(?P<data>.*)", line)
    assert match, line
    props = dict(p.split("=", 1) for p in match["props"].split(","))
    return {k: _unescape(v) for k, v in props.items()}, _unescape(match["data"])


def _as_text(finding: dict[str, Any]) -> str:
    """The text format's line for a JSON finding (`file:line:column: subject: message`)."""
    where = finding["file"]
    if finding["line"]:
        where += f":{finding['line']}:{finding['column']}"
    subject = ""
    if finding["table"]:
        subject = finding["table"] + (f" '{finding['record']}'" if finding["record"] else "")
    if finding["field"]:
        subject += f" field '{finding['field']}'"
    message = finding["message"] + (f"; {finding['hint']}" if finding["hint"] else "")
    text = f"{where}: {subject.strip()}: {message}" if subject else f"{where}: {message}"
    return text.replace("\n", "\\n")


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_every_case_reports_the_same_findings_in_each_format(case: Path, tmp_path: Path) -> None:
    expected = _load(case)["errors"]
    as_json, _ = _build(case, tmp_path, "--format", "json")
    document = json.loads(as_json.stdout)
    assert document["ok"] is False
    assert document["outcome"] == "nothing was published; fix the records above"
    findings = document["problems"]
    assert [_as_text(f) for f in findings] == expected
    for finding in findings:
        assert tuple(finding) == JSON_FIELDS

    shutil.rmtree(tmp_path / "project")
    github, summary = _build(case, tmp_path, "--format", "github")
    commands = github.stdout.splitlines()
    assert len(commands) == len(findings)
    for line, finding in zip(commands, findings, strict=True):
        props, message = _parse_command(line)
        assert props["file"] == finding["file"]
        assert props.get("line") == (str(finding["line"]) if finding["line"] else None)
        assert props.get("col") == (str(finding["column"]) if finding["column"] else None)
        assert message == finding["message"] + (f"; {finding['hint']}" if finding["hint"] else "")
    assert github.stderr.splitlines() == [
        f"{len(findings)} problem(s): nothing was published; fix the records above"
    ]
    # The summary: a heading, the table's head, then one row of four cells a problem.
    rows = summary.splitlines()
    assert rows[0] == "### coop100 build: nothing was published; fix the records above"
    assert rows[2:4] == ["| Where | Record | Problem | What to do |", "| --- | --- | --- | --- |"]
    body = rows[4:-1] if rows[-1] == "" else rows[4:]
    assert len(body) == len(findings)
    for row in body:
        assert len(re.findall(r"(?<!\\)\|", row)) == 5, row


def test_commas_colons_percent_signs_and_line_breaks_in_a_title(tmp_path: Path) -> None:
    case = CASES_DIR / "id-with-punctuation.yaml"
    github, summary = _build(case, tmp_path, "--format", "github")
    assert github.stdout.splitlines() == [
        "::error file=records/events/ilo-coop-100-launch-webinar.yaml,line=44,col=5,"
        "title=statements 'esim-intro%2C part 2%3A 100%25%0Aof it' field 'statement_id'"
        "::'esim-intro, part 2: 100%25\\nof it' is not an id: "
        "use lower-case letters and digits joined by single hyphens",
        "::error file=records/events/ilo-coop-100-launch-webinar.yaml,line=200,col=6,"
        "title=statement_topics 'esim-introduction/cooperatives' field 'statement_id'"
        "::'esim-introduction' is not a known statements id",
    ]
    assert summary == (
        "### coop100 build: nothing was published; fix the records above\n"
        "\n"
        "| Where | Record | Problem | What to do |\n"
        "| --- | --- | --- | --- |\n"
        "| records/events/ilo-coop-100-launch-webinar.yaml:44:5 "
        "| statements 'esim-intro, part 2: 100%<br>of it' field 'statement_id' "
        "| 'esim-intro, part 2: 100%\\nof it' is not an id: "
        "use lower-case letters and digits joined by single hyphens |  |\n"
        "| records/events/ilo-coop-100-launch-webinar.yaml:200:6 "
        "| statement_topics 'esim-introduction/cooperatives' field 'statement_id' "
        "| 'esim-introduction' is not a known statements id |  |\n"
        "\n"
    )
    shutil.rmtree(tmp_path / "project")
    as_json, _ = _build(case, tmp_path, "--format", "json")
    assert json.loads(as_json.stdout)["problems"][0] == {
        "file": "records/events/ilo-coop-100-launch-webinar.yaml",
        "line": 44,
        "column": 5,
        "table": "statements",
        "record": "esim-intro, part 2: 100%\nof it",
        "field": "statement_id",
        "message": "'esim-intro, part 2: 100%\\nof it' is not an id: "
        "use lower-case letters and digits joined by single hyphens",
        "hint": None,
    }


def test_commas_colons_percent_signs_and_line_breaks_in_a_message(tmp_path: Path) -> None:
    case = CASES_DIR / "unknown-key-with-punctuation.yaml"
    github, _ = _build(case, tmp_path, "--format", "github")
    assert github.stdout == (
        "::error file=records/events/ilo-coop-100-launch-webinar.yaml,line=199,col=1,"
        "title=coop100 build"
        "::unknown top-level key 'statement topics, 100%25: all%0Aof them': "
        "expected events, participations, statements, statement_topics\n"
    )
    shutil.rmtree(tmp_path / "project")
    as_json, _ = _build(case, tmp_path, "--format", "json")
    assert json.loads(as_json.stdout) == {
        "command": "build",
        "ok": False,
        "outcome": "nothing was published; fix the records above",
        "problems": [
            {
                "file": "records/events/ilo-coop-100-launch-webinar.yaml",
                "line": 199,
                "column": 1,
                "table": None,
                "record": None,
                "field": None,
                "message": "unknown top-level key 'statement topics, 100%: all\nof them': "
                "expected events, participations, statements, statement_topics",
                "hint": None,
            }
        ],
    }


def test_the_advice_is_the_hint(tmp_path: Path) -> None:
    as_json, _ = _build(CASES_DIR / "unknown-top-level-key.yaml", tmp_path, "--format", "json")
    assert json.loads(as_json.stdout)["problems"] == [
        {
            "file": "records/people.yaml",
            "line": 15,
            "column": 1,
            "table": None,
            "record": None,
            "field": None,
            "message": "unknown top-level key 'person_name': "
            "expected people, person_names, affiliations",
            "hint": "did you mean 'person_names'?",
        }
    ]


def test_a_valid_package_reports_no_problems(fresh_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(fresh_build, root)
    summary = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    as_json = CliRunner().invoke(cli, ["validate", "--root", str(root), "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == {
        "command": "validate",
        "ok": True,
        "outcome": "valid: records, checksums, CSV == Parquet, frictionless",
        "problems": [],
    }
    github = CliRunner().invoke(
        cli, ["validate", "--root", str(root), "--format", "github"], env=env
    )
    assert github.exit_code == 0, github.output
    assert github.stdout == "valid: records, checksums, CSV == Parquet, frictionless\n"
    assert summary.read_text(encoding="utf-8") == (
        "### coop100 validate: valid: records, checksums, CSV == Parquet, frictionless\n\n"
    )
