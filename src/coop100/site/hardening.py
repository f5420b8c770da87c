"""Make a SQLite connection read-only and cap what one query can build.

Datasette's sql_time_limit_ms interrupts between SQLite steps, but one call such
as randomblob(1000000000) is a single step that allocates a gigabyte before the
clock is checked. Capping value sizes makes such calls fail at once. Used by
the plugin on every served connection and by the SQL workers of
coop100.site.sqlguard, so this module imports nothing of Datasette.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from coop100.site import settings

# Authorizer actions that change a database or the connection's view of files.
_WRITES = frozenset(
    getattr(sqlite3, name)
    for name in dir(sqlite3)
    if name.startswith(("SQLITE_CREATE_", "SQLITE_DROP_"))
    or name
    in {
        "SQLITE_INSERT",
        "SQLITE_UPDATE",
        "SQLITE_DELETE",
        "SQLITE_ALTER_TABLE",
        "SQLITE_ATTACH",
        "SQLITE_DETACH",
        "SQLITE_REINDEX",
        "SQLITE_ANALYZE",
    }
)
# Pragmas whose argument names what to read rather than a value to set.
_READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)


def authorize(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    """Deny every write, attach, pragma assignment and forbidden function."""
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
        # SQLite asks this while it parses a virtual table's declaration; a real
        # update of the schema still needs writable_schema, a denied pragma.
        return sqlite3.SQLITE_OK
    if action in _WRITES:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and arg1 not in _READ_PRAGMAS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in settings.FORBIDDEN_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _limit(conn: sqlite3.Connection) -> None:
    for name, value in settings.SQLITE_LIMITS.items():
        conn.setlimit(getattr(sqlite3, name), value)


# A conversion in a printf format, with its width and precision: a number, or *
# taking the next argument. "%%" is a literal percent sign and takes none.
_PRINTF_SIZES = re.compile(r"%(%|[-+ #0,!]*(\d+|\*)?(?:\.(\d+|\*))?)")


_LEADING_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*(?:[eE][-+]?\d+)?)")


def _as_int(value: Any) -> int:
    """Read value as SQLite would when printf takes it as a width: its leading number."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        match = _LEADING_NUMBER.match(value)
        value = float(match.group(0)) if match else 0
    try:
        return int(min(max(float(value), -1e18), 1e18))
    except (TypeError, ValueError, OverflowError):
        return 0


def _printf_padding(fmt: str, args: tuple[Any, ...]) -> int:
    """Return the bytes fmt's widths and precisions ask printf to build, all added up."""
    star_args = iter(args)
    total = 0
    for whole, width, precision in _PRINTF_SIZES.findall(fmt):
        if whole == "%":
            continue
        for size in (width, precision):
            total += abs(_as_int(next(star_args, 0) if size == "*" else size or 0))
    return total


def _bounded_printf() -> Any:
    """Return printf that refuses widths past the value limit before building anything.

    SQLite's own printf('%.*c', 1000000000, 'x') counts to a billion inside one
    call before the length limit turns the result into NULL, and builds each
    wide conversion in full before it is cut off: ten thousand conversions each
    under the limit took 14 s. That time is one call, which sql_time_limit_ms
    cannot interrupt, so the widths of all conversions together are checked.
    Formatting is still SQLite's, done on a private in-memory connection with
    the same limits.
    """
    formatter = sqlite3.connect(":memory:", check_same_thread=False)
    _limit(formatter)

    def printf(fmt: Any, *args: Any) -> Any:
        if isinstance(fmt, str) and _printf_padding(fmt, args) > settings.MAX_VALUE_BYTES:
            # One byte past the limit: SQLite then refuses the value with its
            # usual "string or blob too big", having built nothing large.
            return "x" * (settings.MAX_VALUE_BYTES + 1)
        marks = ", ".join("?" * (len(args) + 1))
        return formatter.execute(f"select printf({marks})", (fmt, *args)).fetchone()[0]

    return printf


def harden(
    conn: sqlite3.Connection,
    read_only: bool = True,
    heap_limit: int = settings.HEAP_LIMIT_BYTES,
) -> None:
    """Cap value sizes, forbid attach and extensions and, if read_only, every write.

    Temporary tables and sorts live in memory, under the heap limit, so a query
    that outgrows it fails instead of filling the disk with temporary files.
    """
    _limit(conn)
    printf = _bounded_printf()
    for name in ("printf", "format"):
        conn.create_function(name, -1, printf, deterministic=True)
    if hasattr(conn, "enable_load_extension"):
        conn.enable_load_extension(False)
    conn.execute(f"pragma hard_heap_limit = {heap_limit}")
    conn.execute("pragma temp_store = memory")
    if read_only:
        conn.execute("pragma query_only = 1")
        conn.set_authorizer(authorize)
