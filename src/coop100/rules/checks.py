"""Rules on one value or one row, each declared once with its Python and Arrow forms.

A `Check` sits beside a field in models.py: Pydantic runs its `py` form on every
YAML record, and bulk.py runs its `arrow` form over whole columns of a JSON Lines
file. A `RowCheck` does the same for a rule between fields of one row. The two
forms stand side by side so a reader sees at once that they say the same thing,
and tests/unit/rules/test_checks.py proves on generated values that they do.

The Arrow helpers below (calendar days, keys, repeated keys) are the ones every
columnar check shares: bulk records, the cross-record rules and fastcheck.py.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

# A column of values or of booleans (pa.Array or pa.ChunkedArray); pyarrow has no stubs.
Mask = Any


@dataclass(frozen=True)
class Check:
    """A rule on the values of one field.

    `py` returns the value (converted, for a `before` check) or raises ValueError
    with the message a contributor reads; `arrow` takes a column of the field's
    values (text for dates and times, as JSON gives them) and returns true where
    `py` would raise. A null is never `arrow`'s concern: the required rule's.
    """

    description: str
    py: Callable[[Any], Any]
    arrow: Callable[[Mask], Mask]
    before: bool = False  # run on the input as given, before Pydantic's own type check

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if self.before:
            return core_schema.no_info_before_validator_function(self.py, schema)
        return core_schema.no_info_after_validator_function(self.py, schema)


@dataclass(frozen=True)
class RowCheck:
    """A rule between fields of one row: `py` gives its message or None, `arrow` its mask."""

    field: str  # the field a message names
    py: Callable[[Any], str | None]
    arrow: Callable[[pa.Table], Mask]


# -- Arrow helpers shared by every columnar check -------------------------------------

# Python's str.isspace() and `\s`, `\d` are Unicode-wide; RE2's are ASCII. Spell
# Python's sets out so a column check accepts exactly what Python accepts.
PY_SPACE = "".join(f"\\x{{{c:x}}}" for c in range(0x3001) if chr(c).isspace())  # none above
PY_DIGIT = r"\p{Nd}"


def char_class(chars: str) -> str:
    """An RE2 character class of exactly these characters."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(set(chars))) + "]"


def code_points(category: str) -> str:
    """Every character of a Unicode general category, as Python's unicodedata knows it."""
    return "".join(
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c)) == category and not 0xD800 <= c <= 0xDFFF
    )


def matches(values: Mask, pattern: str) -> Mask:
    return pc.match_substring_regex(values, pattern)


def fullmatch_bad(values: Mask, pattern: str) -> Mask:
    """True where re.fullmatch(pattern, value) fails.

    The pattern is written for Python's re; RE2 reads `\\d` and `\\s` as ASCII
    only, so they are spelled out as Python's Unicode-wide sets (`\\s` only
    inside a character class).
    """
    re2 = pattern.replace(r"\d", PY_DIGIT).replace(r"\s", PY_SPACE)
    return pc.invert(matches(values, f"^(?:{re2})$"))


def refuses(pattern: str) -> Callable[[Mask], Mask]:
    """The arrow form of a check that accepts exactly the values re.fullmatch(pattern) accepts."""
    return lambda values: fullmatch_bad(values, pattern)


def never(values: Mask) -> Mask:
    """The arrow form of a check the reader's types already enforce: false everywhere.

    Read from the validity bitmap, not the values (measuring a million texts took 0.13 s).
    """
    return pc.and_(pc.is_valid(values), pa.scalar(False))


def calendar_bad(values: Mask, fmt: str = "%Y-%m-%d") -> Mask:
    """True where a text is not a real day written in fmt (null stays null)."""
    # strptime rolls 30 February over to 1 March: a real day prints back as itself.
    parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
    bad = pc.fill_null(pc.not_equal(pc.strftime(parsed, format=fmt), values), True)
    # Arrow knows a year 0; Python's dates (and so the models and frictionless) begin at 1.
    bad = pc.or_(bad, pc.starts_with(values, "0000"))
    return pc.if_else(pc.is_valid(values), bad, pa.scalar(None, pa.bool_()))


def differ(a: str, b: str, message: str) -> RowCheck:
    """The rule that fields a and b of a row do not hold the same value (named at a)."""
    return RowCheck(
        a,
        lambda row: message if getattr(row, a) == getattr(row, b) else None,
        lambda t: pc.fill_null(pc.equal(t[a], t[b]), False),
    )


def either(a: str, b: str, message: str) -> RowCheck:
    """The rule that a row gives field a, field b or both (named at a)."""
    return RowCheck(
        a,
        lambda row: message if getattr(row, a) is None and getattr(row, b) is None else None,
        lambda t: pc.and_(pc.is_null(t[a]), pc.is_null(t[b])),
    )


def row_key(table: pa.Table, names: tuple[str, ...] | list[str]) -> Mask:
    """Each row's key: its key fields joined by '/'."""
    if len(names) == 1:
        return table[names[0]]
    return pc.binary_join_element_wise(*[table[n] for n in names], "/")


def repeated_keys(key: Mask) -> tuple[Mask, dict[Any, int]]:
    """Rows whose key an earlier row already holds, and the first row of each such key."""
    numbered = pa.table({"key": key, "row": pa.array(range(len(key)), pa.int64())})
    groups = numbered.group_by("key", use_threads=False).aggregate(
        [("row", "min"), ("row", "count")]
    )
    repeated = groups.filter(pc.greater(groups["row_count"], 1))
    later = pc.and_(
        pc.is_in(key, repeated["key"]), pc.invert(pc.is_in(numbered["row"], repeated["row_min"]))
    )
    first = dict(zip(repeated["key"].to_pylist(), repeated["row_min"].to_pylist(), strict=True))
    return pc.fill_null(later, False), first
