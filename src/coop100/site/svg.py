"""Pictures for the row pages, drawn as SVG on the server: no script, no network.

Each function returns one `<svg role="img">` whose <title> says what it shows;
the page puts the same data beside it as a table or list, which is what a
screen reader reads. Styling is by presentation attributes and classes from
static/pages.css, never a style attribute, so the pages keep working under a
Content-Security-Policy without 'unsafe-inline'. Labels longer than a line are
cut with an ellipsis: the full text is in the table beside the picture.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# The drawing's own units. Narrow enough that on a 375 px phone a picture is
# drawn near its natural size and its 13-unit text stays readable.
WIDTH = 400
FONT = 13
INK = "#1a1a1a"
BAR = "#2f5d8a"
ALT = "#8a4b12"  # the facilitator in a timeline
MARK = "#b3261e"  # the current row in a thread or tree
GRID = "#767676"


def _id(title: str) -> str:
    return "fig-" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:10]


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def _svg(title: str, width: float, height: float, body: list[str]) -> Markup:
    ident = _id(title)
    return Markup(
        f'<svg class="coop100-figure" role="img" aria-labelledby="{ident}" '
        f'viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}" '
        f'font-size="{FONT}" font-family="sans-serif" fill="{INK}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{ident}">{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, **attributes: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attributes.items())
    return f'<text x="{x:g}" y="{y:g}"{extra}>{escape(text)}</text>'


def bars(title: str, items: Sequence[tuple[str, int]], unit: str) -> Markup | None:
    """Horizontal bars, one per (label, count), longest first as given."""
    if not items:
        return None
    label_width, row = 170, 22
    most = max(count for _, count in items) or 1
    span = WIDTH - label_width - 40
    body = []
    for i, (label, count) in enumerate(items):
        y = i * row + 4
        body.append(_text(label_width - 6, y + 13, _cut(label, 24), text_anchor="end"))
        length = max(2.0, span * count / most)
        body.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="13" fill="{BAR}"/>'
        )
        body.append(_text(label_width + length + 4, y + 13, f"{count:,}"))
    height = len(items) * row + 24
    body.append(_text(label_width, height - 6, f"bar length: {unit}", font_size="11"))
    return _svg(title, WIDTH, height, body)


def timeline(title: str, items: Sequence[tuple[int, str, str, int]]) -> Markup | None:
    """The programme top to bottom in speaking order: (order, name, role, statements).

    The sources give no times per speaker, so a bar's length is the number of
    statements the package records for them, not minutes.
    """
    if not items:
        return None
    row, spine = 42, 16
    most = max(n for *_, n in items) or 1
    body = [
        f'<line x1="{spine}" y1="12" x2="{spine}" y2="{(len(items) - 1) * row + 12}" '
        f'stroke="{GRID}" stroke-width="2"/>'
    ]
    for i, (order, name, role, statements) in enumerate(items):
        y = i * row + 12
        colour = ALT if role == "facilitator" else BAR
        body.append(f'<circle cx="{spine}" cy="{y}" r="11" fill="{colour}"/>')
        body.append(
            _text(spine, y + 4, str(order), text_anchor="middle", fill="#ffffff", font_size="11")
        )
        body.append(_text(34, y + 4, _cut(f"{name} ({role})", 44)))
        length = max(2.0, (WIDTH - 90) * statements / most)
        body.append(f'<rect x="34" y="{y + 10}" width="{length:.1f}" height="8" fill="{colour}"/>')
        body.append(_text(38 + length, y + 18, f"{statements:,}", font_size="11"))
    height = len(items) * row + 14
    body.append(
        _text(34, height - 2, "bar length: statements recorded, not minutes", font_size="11")
    )
    return _svg(title, WIDTH, height + 4, body)


@dataclass(frozen=True)
class Node:
    """One statement of a thread: its label, the index of what it answers, if drawn."""

    label: str
    answers: int | None
    current: bool = False


def thread(title: str, nodes: Sequence[Node]) -> Markup | None:
    """Statements top to bottom in order, an arc from each answer to what it answers."""
    if not any(n.answers is not None for n in nodes):
        return None
    row = 24
    longest = max((abs(i - n.answers) for i, n in enumerate(nodes) if n.answers is not None))
    x = min(36 + 10 * longest, 120)
    marker = _id(title) + "-arrow"
    body = [
        f'<defs><marker id="{marker}" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{BAR}"/></marker></defs>'
    ]
    for i, node in enumerate(nodes):
        if node.answers is None:
            continue
        y1, y2 = i * row + 14, node.answers * row + 14
        bend = x - min(x - 4, 24 + 10 * abs(i - node.answers))
        body.append(
            f'<path d="M{x - 6},{y1} C{bend},{y1} {bend},{y2} {x - 7},{y2}" fill="none" '
            f'stroke="{BAR}" stroke-width="1.5" marker-end="url(#{marker})"/>'
        )
    for i, node in enumerate(nodes):
        y = i * row + 14
        colour = MARK if node.current else INK
        body.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}"/>')
        weight = {"font_weight": "bold"} if node.current else {}
        body.append(
            _text(x + 10, y + 4, _cut(node.label, int((WIDTH - x) / 7)), fill=colour, **weight)
        )
    return _svg(title, WIDTH, len(nodes) * row + 8, body)


def matrix(
    title: str, speakers: Sequence[str], topics: Sequence[str], counts: dict[tuple[str, str], int]
) -> Markup | None:
    """A dot per speaker (column) and topic (row), its area the number of statements."""
    if not speakers or not topics:
        return None
    label_width, cell, header = 170, 26, 120
    most = max(counts.values(), default=0) or 1
    # Room on the right for the last speakers' names, which slant up and away.
    width = max(WIDTH, label_width + cell * len(speakers) + 70)
    body = []
    for j, speaker in enumerate(speakers):
        x = label_width + j * cell + cell / 2
        body.append(
            _text(x, header - 6, _cut(speaker, 16), transform=f"rotate(-55 {x:g} {header - 6})")
        )
    for i, topic in enumerate(topics):
        y = header + i * cell + cell / 2
        body.append(_text(label_width - 8, y + 4, _cut(topic, 24), text_anchor="end"))
        body.append(
            f'<line x1="{label_width}" y1="{y:g}" x2="{label_width + cell * len(speakers)}" '
            f'y2="{y:g}" stroke="#d0d0d0"/>'
        )
        for j, speaker in enumerate(speakers):
            n = counts.get((speaker, topic), 0)
            if n:
                r = 3 + 8 * math.sqrt(n / most)
                cx = label_width + j * cell + cell / 2
                body.append(f'<circle cx="{cx:g}" cy="{y:g}" r="{r:.1f}" fill="{BAR}"/>')
    return _svg(title, width, header + cell * len(topics) + 6, body)


def tree(title: str, nodes: Sequence[dict[str, object]]) -> Markup | None:
    """An indented tree: each node {name, depth, current} under the last shallower one."""
    if not nodes:
        return None
    row, indent = 24, 18
    body = []
    last_at_depth: dict[int, int] = {}
    for i, node in enumerate(nodes):
        depth = int(str(node["depth"]))
        y = i * row + 14
        x = 10 + indent * depth
        parent = last_at_depth.get(depth - 1)
        if parent is not None:
            px, py = 10 + indent * (depth - 1), parent * row + 14
            body.append(f'<path d="M{px},{py + 5} V{y} H{x - 5}" fill="none" stroke="{GRID}"/>')
        last_at_depth[depth] = i
        colour = MARK if node["current"] else BAR
        body.append(f'<rect x="{x - 5}" y="{y - 5}" width="10" height="10" fill="{colour}"/>')
        weight = {"font_weight": "bold"} if node["current"] else {}
        name = str(node["name"])
        body.append(_text(x + 10, y + 4, _cut(name, int((WIDTH - x - 10) / 7)), **weight))
    return _svg(title, WIDTH, len(nodes) * row + 8, body)
