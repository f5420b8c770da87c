"""Names for the form controls and scrolling tables Datasette 0.65 leaves unnamed.

Its table page's filter selects and inputs, its small-screen sort select and the
box a wide table scrolls in have no label, so a screen reader announces them as
"combo box" or not at all. They sit in the middle of the 170-line `content`
block of table.html (and of query.html and row.html); rather than copy those
blocks, the templates pass the block Datasette renders through `name_controls`,
which adds an aria-label to each. Every fragment is Datasette's exact markup: a
test checks that each is still in its templates, so an upgrade that changes one
fails there rather than silently dropping a name.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from markupsafe import Markup

# Datasette's markup (the start of a tag) and the name it gets.
NAMES: dict[str, str] = {
    '<select name="_filter_column': "Column to filter",
    '<select name="_filter_op': "How to compare",
    '<input type="text" name="_filter_value': "Value to compare with",
    '<select name="_sort" id="sort_by"': "Sort by",
    # Focusable, so a keyboard user can scroll a table that has no link in it.
    '<div class="table-wrapper"': "Rows",
}
_FOCUSABLE = {'<div class="table-wrapper"'}


def name_controls(html: str) -> Markup:
    """Return Datasette's rendered block with an aria-label on each control it leaves unnamed."""
    named = str(html)
    for fragment, name in NAMES.items():
        tag, rest = fragment.split(" ", 1)
        extra = ' tabindex="0" role="region"' if fragment in _FOCUSABLE else ""
        named = named.replace(fragment, f'{tag} aria-label="{name}"{extra} {rest}')
    return Markup(named)


@hookimpl(specname="prepare_jinja2_environment")  # type: ignore[untyped-decorator]
def control_names_filter(env: Any) -> None:
    """Let the templates call `name_controls` on what Datasette's blocks render."""
    env.filters["name_controls"] = name_controls
