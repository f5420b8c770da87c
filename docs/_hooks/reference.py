"""MkDocs hooks: the settings reference, generated from the modules that define them,
and a name for Material's search dialog.

A page holding `<!-- settings: <module> -->` gets, in its place, every setting of that
module: name, value and the comment written beside it, under the module's own section
comments (`# -- name ---`). The modules are the one definition; nothing here repeats them.

Material's search box is a `role="dialog"` with no accessible name (axe-core:
aria-dialog-name, serious); each page's dialog gets one, and a theme whose markup no
longer matches fails the build rather than silently losing it.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"<!-- settings: ([\w.]+) -->")
_SECTION = re.compile(r"^# -- (.+?) -+$")
_MAX_VALUE = 70


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    section: str
    description: str


def settings_of(module: str) -> list[Setting]:
    """Every upper-case name a settings module binds, in source order."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    source = Path(spec.origin).read_text(encoding="utf-8")
    lines = source.splitlines()
    trailing = _trailing_comments(source)
    found: list[Setting] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                name = alias.asname or alias.name
                if name.isupper():
                    where = _section(lines, node.lineno)
                    found.append(Setting(name, f"from `{node.module}`", where, ""))
            continue
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        for target in targets:
            if not (isinstance(target, ast.Name) and target.id.isupper()):
                continue
            value = ast.get_source_segment(source, node.value) or ""
            description = " ".join(
                [*_comment_above(lines, node.lineno), *trailing.get(node.lineno, [])]
            )
            found.append(Setting(target.id, value, _section(lines, node.lineno), description))
    return found


def settings_markdown(module: str) -> str:
    """The settings of module as Markdown: one table per section."""
    out: list[str] = []
    section = None
    for setting in settings_of(module):
        if setting.section != section:
            section = setting.section
            out += ["", f"### {section.capitalize()}" if section else "### General", ""]
            out += ["| setting | value | what it is |", "| --- | --- | --- |"]
        value = _short(setting.value)
        shown = value if value.startswith("from `") else f"`{value}`"
        out.append(f"| `{setting.name}` | {_cell(shown)} | {_cell(setting.description)} |")
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' hook: fill in each settings marker."""
    return _MARKER.sub(lambda m: settings_markdown(m.group(1)), markdown)


_SEARCH_DIALOG = '<div class="md-search" data-md-component="search" role="dialog">'
_NAMED_DIALOG = _SEARCH_DIALOG.replace('role="dialog"', 'role="dialog" aria-label="Search"')


def on_post_page(output: str, **_: Any) -> str:
    """MkDocs' hook: name the search dialog of every page."""
    if _SEARCH_DIALOG not in output:
        raise ValueError("Material's search dialog markup changed; update docs/_hooks")
    return output.replace(_SEARCH_DIALOG, _NAMED_DIALOG)


def _trailing_comments(source: str) -> dict[int, list[str]]:
    """Comments that follow code on the same line, by line number."""
    comments: dict[int, list[str]] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.start[0] in code_lines:
            comments.setdefault(token.start[0], []).append(token.string.lstrip("# "))
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            code_lines.add(token.start[0])
    return comments


def _comment_above(lines: list[str], lineno: int) -> list[str]:
    """The block of comment lines right above a line (not a section heading)."""
    above: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].startswith("#") and not _SECTION.match(lines[index]):
        above.insert(0, lines[index].lstrip("# ").rstrip())
        index -= 1
    return [line for line in above if line]


def _section(lines: list[str], lineno: int) -> str:
    for line in reversed(lines[: lineno - 1]):
        if match := _SECTION.match(line):
            return match.group(1)
    return ""


def _short(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
