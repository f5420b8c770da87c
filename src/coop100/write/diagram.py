"""The diagram of the tables and their keys, as SVG, drawn from the models.

One box per table, in the package's order, listing its primary key (PK) and
foreign keys (FK, with the table each names); a line runs from each foreign key,
round the left margin, to the key it joins to (an arc diagram). Drawn here in
Python rather than by Graphviz: the bytes depend only on the models, so every
machine builds the same file and the drift check holds without a tool beyond
Python, where Graphviz's output carries its version and its layout may move
between versions.
"""

from __future__ import annotations

from html import escape

from coop100.rules.models import MODELS, Record
from coop100.rules.tables import columns

TITLE = "The tables of the package and their keys"
FONT = 12
CHAR = 7.3  # width of one character of FONT in a monospace face, a little generous
ROW, HEADER, GAP, PAD = 18, 22, 14, 8
LANE = 8  # between two lines in the left margin
INK, BOX, FILL, HEAD = "#1a1a1a", "#5f5f5f", "#ffffff", "#e8eef4"
# One colour per table joined to (each 3:1 or more against white), in order of first use.
COLOURS = ("#2f5d8a", "#8a4b12", "#1b6e3a", "#b3261e", "#6a3d9a", "#00707a", "#5f5f5f")


def _lines(model: type[Record]) -> list[tuple[str, str | None]]:
    """A box's rows: (text, the key field it shows or None)."""
    keys = list(dict.fromkeys([*model.primary_key, *model.foreign_keys]))
    rows: list[tuple[str, str | None]] = []
    for field in keys:
        mark = ("PK " if field in model.primary_key else "") + (
            "FK" if field in model.foreign_keys else ""
        )
        target = model.foreign_keys.get(field)
        rows.append((f"{mark:<6}{field}" + (f" → {target[0]}" if target else ""), field))
    others = len(columns(model)) - len({*model.primary_key, *model.foreign_keys})
    if others:
        rows.append((f"      and {others} more field{'s' if others != 1 else ''}", None))
    return rows


def joins() -> list[tuple[str, str, str, str]]:
    """(table, field, target table, target field) of every foreign key, in the package's order."""
    return [
        (model.table, name, target, target_field)
        for model in MODELS
        for name, (target, target_field) in model.foreign_keys.items()
    ]


def diagram_svg() -> str:
    """The diagram as a standalone SVG document."""
    # Where each box and each key row is (y of the row's middle).
    y = float(PAD)
    boxes: list[tuple[type[Record], float, list[tuple[str, str | None]]]] = []
    at: dict[tuple[str, str], float] = {}
    for model in MODELS:
        rows = _lines(model)
        boxes.append((model, y, rows))
        for i, (_, field) in enumerate(rows):
            if field is not None:
                at[(model.table, field)] = y + HEADER + i * ROW + ROW / 2
        y += HEADER + len(rows) * ROW + GAP
    height = y - GAP + PAD
    edges = [(at[(t, f)], at[(tt, tf)], tt) for t, f, tt, tf in joins()]
    # Each line gets the innermost lane free all along its span, shortest lines first.
    lanes: list[list[tuple[float, float]]] = []
    placed: list[tuple[float, float, str, int]] = []
    for start, end, target in sorted(edges, key=lambda e: (abs(e[0] - e[1]), e[0], e[1])):
        low, high = min(start, end) - 3, max(start, end) + 3
        number = next(
            (n for n, taken in enumerate(lanes) if all(high < a or low > b for a, b in taken)),
            len(lanes),
        )
        if number == len(lanes):
            lanes.append([])
        lanes[number].append((low, high))
        placed.append((start, end, target, number))
    left = PAD + LANE * (len(lanes) + 1)
    widest = max(len(text) for _, _, rows in boxes for text, _ in rows)
    box_width = round(max(widest, 24) * CHAR + 2 * PAD)
    width = left + box_width + PAD
    targets = list(dict.fromkeys(target for _, _, target, _ in sorted(placed)))
    colour = {t: COLOURS[i % len(COLOURS)] for i, t in enumerate(targets)}

    body = [f'<rect width="{width:g}" height="{height:g}" fill="{FILL}"/>', "<defs>"]
    for target in targets:
        body.append(
            f'<marker id="to-{target}" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7"'
            f' markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z"'
            f' fill="{colour[target]}"/></marker>'
        )
    body.append("</defs>")
    for start, end, target, number in placed:
        x = left - LANE * (number + 1)
        body.append(
            f'<path d="M{left:g},{start:g} H{x:g} V{end:g} H{left - 1:g}" fill="none"'
            f' stroke="{colour[target]}" stroke-width="1.5" marker-end="url(#to-{target})"/>'
        )
        body.append(f'<circle cx="{left:g}" cy="{start:g}" r="2.5" fill="{colour[target]}"/>')
    for model, top, rows in boxes:
        tall = HEADER + len(rows) * ROW
        body.append(
            f'<rect x="{left:g}" y="{top:g}" width="{box_width}" height="{tall}"'
            f' fill="{FILL}" stroke="{BOX}"/>'
        )
        body.append(
            f'<rect x="{left:g}" y="{top:g}" width="{box_width}" height="{HEADER}"'
            f' fill="{HEAD}" stroke="{BOX}"/>'
        )
        body.append(
            f'<text x="{left + PAD:g}" y="{top + HEADER - 7:g}" font-weight="bold">'
            f"{escape(model.table)}</text>"
        )
        for i, (text, _) in enumerate(rows):
            row_y = top + HEADER + i * ROW + ROW - 5
            body.append(f'<text x="{left + PAD:g}" y="{row_y:g}">{escape(text)}</text>')
    description = "; ".join(f"{t}.{f} joins to {tt}.{tf}" for t, f, tt, tf in joins())
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="title desc"'
        f' viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}"'
        f" font-family=\"ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', monospace\""
        f' font-size="{FONT}" fill="{INK}">\n'
        f'<title id="title">{escape(TITLE)}</title>\n'
        f'<desc id="desc">{escape(description)}.</desc>\n' + "\n".join(body) + "\n</svg>\n"
    )
