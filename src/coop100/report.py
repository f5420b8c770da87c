"""Problems as a person or a machine reads them: plain text, GitHub workflow commands, JSON.

`coop100 build` and `coop100 validate` hand their problems to `emit`. The problem
types themselves are read in one place, `entry`: everything else here sees only
`Entry`, so a new problem type needs a change there and nowhere else.

- text: one problem a line on stderr, as `file:line:column: what: message`.
- github: one `::error file=…,line=…,col=…,title=…::message` workflow command a
  problem on stdout, which GitHub shows on that line of the pull request; since it
  shows at most 10 a step, the whole list also goes to $GITHUB_STEP_SUMMARY as a
  Markdown table when that variable is set.
- json: one JSON document on stdout with every finding's file, line, column, table,
  record, field, message and hint.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from coop100.problems import Problem

FORMATS = ("text", "github", "json")
# What `--format json` gives of each problem, in this order.
JSON_FIELDS = ("file", "line", "column", "table", "record", "field", "message", "hint")
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

# A plain-text problem that starts with a place: `path[:line[:column]]: …`. A
# path holds a dot or a slash, so `statements: …` (a table) is not taken for one.
_PLACE = re.compile(r"(?P<file>[^\s:]*[./][^\s:]*)(?::(?P<line>\d+)(?::(?P<column>\d+))?)?: ")


@dataclass(frozen=True)
class Entry:
    """One problem, taken apart for the formats."""

    # Its place (path, line, column) and subject (table, record, field).
    problem: Problem
    # What is wrong, and what to do about it.
    message: str
    hint: str
    # The subject as the text format words it, e.g. "statements 'x' field 'text'".
    title: str
    # The whole problem as the text format prints it.
    text: str


def split_hint(message: str) -> tuple[str, str]:
    """("what is wrong", "what to do"): every message puts its advice after its last "; ".

    Values are quoted and come before the advice, so a "; " inside quotes is not
    taken for the split.
    """
    for match in reversed(list(re.finditer("; ", message))):
        before = message[: match.start()]
        if before.count("'") % 2 == 0:
            return before, message[match.end() :]
    return message, ""


def entry(problem: Problem | str) -> Entry:
    """The one adapter from the project's problem types to an Entry."""
    text = str(problem)
    if isinstance(problem, str):
        place = _PLACE.match(text)
        rest = text[place.end() :] if place else text
        message, hint = split_hint(rest)
        if place is None:
            return Entry(Problem("", message=rest), message, hint, "", text)
        line, column = int(place["line"] or 0), int(place["column"] or 0)
        return Entry(Problem(place["file"], line, column, message=rest), message, hint, "", text)
    where = f"{problem.path}:{problem.line}:{problem.column}" if problem.line else problem.path
    said = f"{problem.message}; {problem.hint}" if problem.hint else problem.message
    subject = text.removeprefix(f"{where}: ").removesuffix(said)
    # A rule that gives its hint apart says so; older messages carry it after "; ".
    message, hint = (problem.message, problem.hint) if problem.hint else split_hint(said)
    return Entry(problem, message, hint, subject.removesuffix(": "), text)


# -- text ------------------------------------------------------------------------


def text_line(item: Entry) -> str:
    """The problem on one line: a line break in a value is shown as \\n, not made."""
    return item.text.replace("\r", "\\r").replace("\n", "\\n")


# -- GitHub workflow commands --------------------------------------------------------
# The escapes of GitHub's own toolkit (@actions/core, command.ts): data escapes %,
# CR and LF; a property value also escapes : and , which separate properties.


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def full_message(item: Entry) -> str:
    return f"{item.message}; {item.hint}" if item.hint else item.message


def workflow_command(item: Entry, command: str) -> str:
    """`::error file=…,line=…,col=…,title=…::message` for one problem."""
    properties = []
    if item.problem.path:
        properties.append(f"file={escape_property(item.problem.path)}")
        if item.problem.line:
            properties.append(f"line={item.problem.line}")
        if item.problem.column:
            properties.append(f"col={item.problem.column}")
    properties.append(f"title={escape_property(item.title or f'coop100 {command}')}")
    return f"::error {','.join(properties)}::{escape_data(full_message(item))}"


def _cell(value: str) -> str:
    """Text safe in a Markdown table cell: no HTML, no column breaks, no line breaks."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = value.replace("|", "\\|")
    return value.replace("\r\n", "<br>").replace("\n", "<br>").replace("\r", "<br>")


def summary_markdown(items: Sequence[Entry], command: str, outcome: str) -> str:
    """The step summary: a heading, then every problem as a row of a table."""
    if not items:
        return f"### coop100 {command}: {_cell(outcome)}\n\n"
    rows = [
        f"### coop100 {command}: {_cell(outcome)}",
        "",
        "| Where | Record | Problem | What to do |",
        "| --- | --- | --- | --- |",
    ]
    for item in items:
        where = item.problem.path
        if item.problem.line:
            where += (
                f":{item.problem.line}:{item.problem.column}"
                if item.problem.column
                else f":{item.problem.line}"
            )
        cells = (where, item.title, item.message, item.hint)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n\n"


def append_summary(markdown: str) -> None:
    """Add to the step summary when running on GitHub ($GITHUB_STEP_SUMMARY set)."""
    path = os.environ.get(SUMMARY_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(markdown)


# -- JSON ------------------------------------------------------------------------------


def as_json(items: Sequence[Entry], command: str, outcome: str) -> str:
    """Every finding, machine-readable; an unknown place or subject is null."""
    findings: list[dict[str, Any]] = []
    for item in items:
        p = item.problem
        values = (p.path, p.line, p.column, p.table, p.record, p.field, item.message, item.hint)
        findings.append({k: v or None for k, v in zip(JSON_FIELDS, values, strict=True)})
    document = {"command": command, "ok": not items, "outcome": outcome, "problems": findings}
    return json.dumps(document, ensure_ascii=False, indent=2)


# -- all formats -------------------------------------------------------------------


def emit(problems: Iterable[Problem | str], outcome: str, command: str, format: str) -> None:
    """Report the problems (none: success) of `coop100 <command>` in the chosen format.

    Args:
        outcome: one line on what the problems mean, e.g. "nothing was published",
            or what was done when there are none.
    """
    items = [entry(p) for p in problems]
    if format == "json":
        click.echo(as_json(items, command, outcome))
        return
    if format == "github":
        for item in items:
            click.echo(workflow_command(item, command))
        append_summary(summary_markdown(items, command, outcome))
    elif format == "text":
        for item in items:
            click.echo(text_line(item), err=True)
    else:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if items:
        click.echo(f"{len(items)} problem(s): {outcome}", err=True)
    else:
        click.echo(outcome)
