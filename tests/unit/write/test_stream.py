"""The streaming build writes the bytes writing whole tables wrote, in bounded pieces.

pyarrow's Parquet writer makes different pages of the same rows cut into other
chunks, so the stream must give the chunks a whole-file read gives. Here the
blocks and row groups are made small, so a synthetic archive of a few thousand
statements crosses many of each, and every file is compared with what
`pq.write_table` and `pacsv.write_csv` write from the whole tables.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from coop100 import settings
from coop100.read import bulk, inputs
from coop100.read.bulk import read_tables, stream_tables
from coop100.read.records import read_about
from coop100.rules.models import MODELS
from coop100.rules.tables import table_schema
from coop100.versions.release import read_releases
from coop100.write import layout
from coop100.write.package import CSV_OPTIONS, _csv_schema, parquet_metadata, write_package_files

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import synth  # noqa: E402


def test_streamed_files_are_the_whole_tables_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth.write_archive(tmp_path, 3000)
    records = tmp_path / "records"
    block = 64 << 10  # the statements file is ~1.2 MB: some twenty pieces
    monkeypatch.setattr(inputs, "READ_BLOCK", block)
    monkeypatch.setattr(bulk, "BLOCK_SIZE", block)
    monkeypatch.setattr(layout, "ROW_GROUP_ROWS", 1000)  # statements: three row groups
    # Sorted in runs of 700 rows (statements: five, spilled), merged 64 rows a block.
    monkeypatch.setattr(layout, "RUN_ROWS", 700)
    monkeypatch.setattr(layout, "MERGE_BLOCK_ROWS", 64)

    streamed = tmp_path / "streamed"
    write_package_files(stream_tables(records), streamed, read_releases(records))

    whole = read_tables(records).tables
    about = read_about(records)
    for model in MODELS:
        table = whole[model.table]
        csv_path = tmp_path / f"{model.table}.csv"
        pacsv.write_csv(table.cast(_csv_schema(table.schema)), csv_path, write_options=CSV_OPTIONS)
        parquet_path = tmp_path / f"{model.table}.parquet"
        metadata = parquet_metadata(table_schema(model), about)
        table_layout = layout.layout(model.table)
        pq.write_table(
            layout.in_file_order(table, table_layout.sort_by).replace_schema_metadata(metadata),
            parquet_path,
            row_group_size=1000,
            **table_layout.writer_options(table.schema),
        )
        written = streamed / settings.CSV_DIR / f"{model.table}.csv"
        assert written.read_bytes() == csv_path.read_bytes(), model.table
        written = streamed / settings.PARQUET_DIR / f"{model.table}.parquet"
        assert written.read_bytes() == parquet_path.read_bytes(), model.table
    statements = pq.ParquetFile(streamed / settings.PARQUET_DIR / "statements.parquet")
    assert statements.num_row_groups > 2
    assert statements.metadata.row_group(0).sorting_columns == (
        pq.SortingColumn(statements.schema_arrow.get_field_index("person_id")),
    )
    assert not list((streamed / settings.PARQUET_DIR).glob(".tmp-*")), "the runs are removed"


@pytest.mark.parametrize("second_process", [True, False])
def test_the_build_loads_what_the_published_csvs_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second_process: bool
) -> None:
    """The build feeds SQLite the rows it writes; the package's CSVs must load the same."""
    from coop100 import pipeline
    from coop100.load.database import load_database
    from coop100.serving import FTS_COLUMNS
    from coop100.settings import DB_NAME

    synth.write_archive(tmp_path, 300)
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_MIN_BYTES", 0 if second_process else 1 << 40)
    pipeline.build(tmp_path)
    again = tmp_path / "again.db"
    load_database(tmp_path / settings.DESCRIPTOR, again)
    built = sqlite3.connect(tmp_path / "build" / DB_NAME)
    loaded = sqlite3.connect(again)
    tables = [m.table for m in MODELS] + [settings.FACET_GROUPS_TABLE, settings.FACET_COUNTS_TABLE]
    for table in tables:
        sql = f"select * from [{table}] order by rowid"
        assert built.execute(sql).fetchall() == loaded.execute(sql).fetchall(), table
    for table, columns in FTS_COLUMNS.items():
        for column in columns:
            sql = f"select rowid from [{table}_fts] where [{table}_fts] match ? order by rowid"
            for word in ("cooperative", "ilo", "2020"):
                found = built.execute(sql, [f"{column}:{word}"]).fetchall()
                assert found == loaded.execute(sql, [f"{column}:{word}"]).fetchall()
    # Indexed in WAL mode, the database is left a file of its own: a rollback
    # journal, no log or shared memory beside it.
    assert built.execute("pragma journal_mode").fetchone() == ("delete",)
    assert sorted(p.name for p in (tmp_path / "build").glob(f"*{DB_NAME}*")) == [DB_NAME]


def test_a_second_process_finds_the_rules_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeated key, a dangling reference: found by SQLite in the loading process."""
    from coop100 import pipeline
    from coop100.problems import RecordsError

    synth.write_archive(tmp_path, 300)
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_MIN_BYTES", 0)
    statements = tmp_path / "records" / "bulk" / "statements.jsonl"
    lines = statements.read_text(encoding="utf-8").splitlines(keepends=True)
    statements.write_text("".join(lines + lines[-1:]), encoding="utf-8")
    with pytest.raises(RecordsError, match="duplicate id"):
        pipeline.build(tmp_path)
    statements.write_text("".join(lines), encoding="utf-8")
    topics = tmp_path / "records" / "bulk" / "statement_topics.jsonl"
    text = topics.read_text(encoding="utf-8")
    topics.write_text(text.replace('"topic_id": "', '"topic_id": "x', 1), encoding="utf-8")
    with pytest.raises(RecordsError, match="is not a known topics id"):
        pipeline.build(tmp_path)
    assert not (tmp_path / "build").exists()


@pytest.fixture
def loaded_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A synthetic archive in tmp_path, built with SQLite loaded in the build's own process."""
    from coop100 import pipeline

    synth.write_archive(tmp_path, 300)
    monkeypatch.setattr(pipeline, "SECOND_PROCESS_MIN_BYTES", 1 << 40)


def test_a_database_another_connection_holds_in_wal_mode_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded_in_process: None
) -> None:
    """The indexes are in the log until the journal goes back to delete mode; if another
    connection holds the log, SQLite refuses the switch and nothing is published."""
    from coop100 import pipeline
    from coop100.load import judge

    kept = []
    broken_rules = judge.broken_rules

    def and_read_on(conn: sqlite3.Connection) -> list[str]:
        path = conn.execute("pragma database_list").fetchone()[2]
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("select count(*) from sources").fetchone()  # open, between reads
        kept.append(other)
        return broken_rules(conn)

    monkeypatch.setattr(judge, "broken_rules", and_read_on)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        pipeline.build(tmp_path)
    assert kept
    assert not (tmp_path / "build").exists()


def test_batches_reach_the_loading_process_whole_in_a_reused_buffer() -> None:
    """Arrow IPC messages through a pipe, the buffer grown for a bigger one."""
    import multiprocessing
    import threading

    import pyarrow as pa

    from coop100.load.process import _ipc_message, _Received

    batches = [
        pa.record_batch(
            {"id": [f"s-{n}" for n in range(rows)], "n": list(range(rows))},
            schema=pa.schema([("id", pa.string()), ("n", pa.int64())]),
        )
        for rows in (3, 5000, 10, 20000, 0)
    ]
    receive, send = multiprocessing.Pipe(duplex=False)
    # A message bigger than the pipe holds is read while it is sent.
    sender = threading.Thread(target=lambda: [send.send_bytes(_ipc_message(b)) for b in batches])
    sender.start()
    received = _Received(receive)
    for batch in batches:
        assert received.batch().equals(batch), batch.num_rows
    sender.join()


def test_the_reader_beside_the_indexing_runs_at_the_lowest_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded_in_process: None
) -> None:
    """The checks beside the indexing take only the time left: the indexes keep a core."""
    import os
    import threading

    from coop100 import pipeline
    from coop100.load import judge

    lowered = []
    lower_priority = judge.lower_priority

    def record() -> None:
        lower_priority()
        lowered.append((threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, 0)))

    monkeypatch.setattr(judge, "lower_priority", record)
    pipeline.build(tmp_path)
    assert [name.split("_")[0] for name, _ in lowered] == ["coop100-read"]
    if sys.platform == "linux":
        assert lowered[0][1] == 19


def test_a_failed_index_stops_the_reader_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded_in_process: None
) -> None:
    """The connection reading beside the indexing stops with it, and nothing is published."""
    import threading

    from coop100 import pipeline
    from coop100.load.database import Load

    indexed = []
    index_table = Load.index_table

    def fail_second(load: Load, name: str) -> None:
        if indexed:
            raise sqlite3.OperationalError("database or disk is full")
        indexed.append(name)
        index_table(load, name)

    monkeypatch.setattr(Load, "index_table", fail_second)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        pipeline.build(tmp_path)
    assert indexed == ["statement_topics"]  # the largest table first
    assert not [t for t in threading.enumerate() if t.name.startswith("coop100-read")]
    assert not (tmp_path / "build").exists()
