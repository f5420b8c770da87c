"""Datasette plugin: make every connection read-only and cap what one query can build.

Datasette's sql_time_limit_ms interrupts between SQLite steps, but one call such
as randomblob(1000000000) is a single step that allocates a gigabyte before the
clock is checked. Capping value sizes makes such calls fail at once.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from datasette import hookimpl

from coop100.site import settings

# Datasette's own bookkeeping database, which it writes to.
_INTERNAL = "_internal"

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


def harden(conn: sqlite3.Connection) -> None:
    """Cap value sizes, forbid attach and extensions, and refuse every write on conn."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, settings.MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, settings.MAX_SQL_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    if hasattr(conn, "enable_load_extension"):
        conn.enable_load_extension(False)
    conn.execute(f"pragma hard_heap_limit = {settings.HEAP_LIMIT_BYTES}")
    conn.execute("pragma query_only = 1")
    conn.set_authorizer(authorize)


@hookimpl  # type: ignore[untyped-decorator]
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    """Harden every connection to a published database."""
    if database != _INTERNAL:
        harden(conn)


@hookimpl  # type: ignore[untyped-decorator]
def extra_template_vars(template: str, datasette: Any) -> Any:
    """Give the landing page the row count of every table (read from the inspect file)."""

    async def row_counts() -> dict[str, dict[str, int]]:
        if template != "index.html" or settings.DATABASE not in datasette.databases:
            return {"row_counts": {}}
        counts = await datasette.get_database(settings.DATABASE).table_counts()
        return {"row_counts": {name: n for name, n in counts.items() if n is not None}}

    return row_counts
