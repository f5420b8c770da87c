"""The one kind of problem every step reports, and how it prints.

A rule finds a problem at a row of a table (`row`, and `other` when its message
points at a second row); the reader of the records the row came from gives it its
place, `file:line:column`, since only the reader knows where a row came from.
A check of the published package gives a resource and the row number as
frictionless counts it. Every problem prints on one line, where first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong, located as precisely as the step that found it can."""

    path: str = ""
    line: int = 0
    column: int = 0
    table: str = ""
    record: str = ""
    field: str = ""
    message: str = ""
    hint: str = ""  # what to do, printed after the message
    kind: str = ""  # frictionless's error type, for a problem in a published resource
    row: int = -1  # the row of `table` a rule found it at, until a reader places it
    other: int = -1  # a second row of `table` the message points at ("first at …")

    def __str__(self) -> str:
        text = f"{self.message}; {self.hint}" if self.hint else self.message
        if not self.path:  # a published resource: frictionless's way of saying where
            where = self.table
            if self.row > 0:
                where += f" row {self.row}"
            if self.field:
                where += f" field '{self.field}'"
            return f"{where}: {text}" if where else text
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        what = ""
        if self.table:
            what += f"{self.table} '{self.record}' " if self.record else f"{self.table} "
        if self.field:
            what += f"field '{self.field}'"
        return f"{where}: {what.strip()}: {text}" if what else f"{where}: {text}"


class RecordsError(Exception):
    """The records hold problems; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class DatabaseError(Exception):
    """The package cannot be loaded into SQLite as it stands."""
