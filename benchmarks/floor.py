"""The build's full floor: the same outputs written by tools that do nothing else.

Two parts, measured on the package a build just published:

- pyarrow writing the same tables as CSV and Parquet (zstd level 9, as published);
- Debian's `sqlite3` command-line shell importing the published CSVs
  (`.import --csv --skip 1`) into the same tables, then creating the same indexes
  and rebuilding the same FTS5 tables, with the build's load pragmas, while a
  thread writes the zip of the package (coop100.write.archive.write_zip), as the build
  writes it beside the database.

Nothing here restates a rule of the build: the tables come from
coop100.load.schema.create_table_sql over the published descriptor, the pragmas from
coop100.load.database.LOAD_PRAGMAS, the full-text tables from FTS_COLUMNS, FTS_TOKENIZER and
FTS_SETTINGS, and the indexes are those the build's own database holds on the
package's tables (read from its sqlite_master), so the floor creates whatever
indexes the loader creates.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The Debian package and the make target that install the shell.
SQLITE3_PACKAGE = "sqlite3"
INSTALL_HINT = (
    "the sqlite3 command-line shell is not installed: run `make bench-1m` (or any bench "
    "target; it apt-installs it) or `apt-get install sqlite3`"
)


class FloorError(Exception):
    """The floor cannot be measured here (a tool is missing or failed)."""


def sqlite3_shell() -> str:
    """The path of the sqlite3 shell, or FloorError saying how to install it."""
    found = shutil.which("sqlite3")
    if found is None:
        raise FloorError(INSTALL_HINT)
    return found


def build_indexes(db_path: Path, tables: set[str]) -> list[str]:
    """The CREATE INDEX statements of the build's database on the package's tables."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "select tbl_name, sql from sqlite_master"
            " where type = 'index' and sql is not null order by rowid"
        ).fetchall()
    finally:
        connection.close()
    return [sql for table, sql in rows if table in tables]


def shell_script(root: Path, db_path: Path) -> str:
    """The sqlite3 shell script of the floor: pragmas, tables, imports, indexes, FTS."""
    from coop100 import settings
    from coop100.load.database import (
        FTS_SETTINGS,
        FTS_TOKENIZER,
        LOAD_PRAGMAS,
        csv_resources,
        read_descriptor,
    )
    from coop100.load.schema import create_table_sql, quote
    from coop100.serving import FTS_COLUMNS

    descriptor = read_descriptor(root / settings.DESCRIPTOR)
    resources = csv_resources(descriptor)
    names = {resource["name"] for resource in resources}
    lines = [".bail on", *(f"pragma {pragma};" for pragma in LOAD_PRAGMAS)]
    lines += [create_table_sql(resource) + ";" for resource in resources]
    for resource in resources:
        path = (root / resource["path"]).resolve()
        lines.append(f'.import --csv --skip 1 "{path}" {quote(resource["name"])}')
    lines += [sql + ";" for sql in build_indexes(db_path, names)]
    for table, columns in FTS_COLUMNS.items():
        if table not in names:
            continue
        fts = quote(f"{table}_fts")
        lines += [
            f"create virtual table {fts} using fts5("
            + ", ".join(map(quote, columns))
            + f", tokenize='{FTS_TOKENIZER}', content={quote(table)});",
            *(
                f"insert into {fts}({fts}, rank) values('{setting}', {value});"
                for setting, value in FTS_SETTINGS.items()
            ),
            f"insert into {fts}({fts}) values('rebuild');",
        ]
    return "\n".join(lines) + "\n"


def _timed(function: Callable[[], object]) -> dict[str, Any]:
    start = time.perf_counter()
    function()
    return {"seconds": round(time.perf_counter() - start, 3)}


def pyarrow_floor(root: Path, out: Path) -> None:
    """pyarrow writing the package's tables as CSV and Parquet under out, and nothing else."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from coop100 import settings

    for path in sorted((root / settings.PARQUET_DIR).glob("*.parquet")):
        table = pq.ParquetFile(path).read()
        pacsv.write_csv(table, out / f"{path.stem}.csv")
        pq.write_table(table, out / path.name, compression="zstd", compression_level=9)


def shell_and_zip(root: Path, out: Path, db_path: Path) -> dict[str, Any]:
    """The sqlite3 shell loading the package into out/, the zip written meanwhile on a thread.

    Returns each part's wall time; the caller times the whole.
    """
    from coop100 import settings
    from coop100.write.archive import ZIP_NAME, write_zip

    shell = sqlite3_shell()
    script = shell_script(root, db_path)
    (out / "floor.sql").write_text(script, encoding="utf-8")
    parts: dict[str, Any] = {}
    failed: list[BaseException] = []

    def zip_package() -> None:
        try:
            parts["write zip"] = _timed(
                lambda: write_zip(root / settings.DESCRIPTOR, out / ZIP_NAME)
            )
        except BaseException as exc:  # reported once the shell is done
            failed.append(exc)

    zipper = threading.Thread(target=zip_package, name="floor-zip")
    start = time.perf_counter()
    zipper.start()
    done = subprocess.run(
        [shell, "-batch", str(out / "floor.db")],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    parts["sqlite3 shell"] = {"seconds": round(time.perf_counter() - start, 3)}
    zipper.join()
    if done.returncode != 0:
        raise FloorError(f"sqlite3 shell failed ({done.returncode}): {done.stderr.strip()}")
    if failed:
        raise FloorError(f"floor zip failed: {failed[0]}")
    return parts


def shell_version() -> str:
    done = subprocess.run([sqlite3_shell(), "--version"], capture_output=True, text=True)
    return done.stdout.split()[0] if done.stdout else "?"
