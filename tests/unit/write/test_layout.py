"""The Parquet layout: every table sorted as declared, in bounded memory, same bytes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coop100.rules.models import MODELS
from coop100.rules.tables import arrow_schema
from coop100.write import layout


def test_every_table_is_sorted_by_one_of_its_columns() -> None:
    assert set(layout.SORT_BY) == {model.table for model in MODELS}
    for model in MODELS:
        assert layout.SORT_BY[model.table] in arrow_schema(model).names, model.table


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(
        st.one_of(st.none(), st.sampled_from(["", "a", "ab", "b", "é", "z"])), max_size=80
    ),
    run_rows=st.integers(1, 9),
    block_rows=st.integers(1, 5),
    group_rows=st.integers(1, 12),
    batch_rows=st.integers(1, 10),
)
def test_the_merged_runs_are_the_stable_sort_of_the_whole(
    tmp_path_factory: pytest.TempPathFactory,
    keys: list[str | None],
    run_rows: int,
    block_rows: int,
    group_rows: int,
    batch_rows: int,
) -> None:
    """Runs, blocks and batches of any size give the rows in_file_order gives, ties in order."""
    folder = tmp_path_factory.mktemp("merge")
    table = pa.table({"key": pa.array(keys, pa.string()), "n": pa.array(range(len(keys)))})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layout, "RUN_ROWS", run_rows)
        patch.setattr(layout, "MERGE_BLOCK_ROWS", block_rows)
        table_layout = layout.Layout(sort_by="key", row_group_rows=group_rows, page_index=True)
        writer = layout.ParquetTableWriter(folder / "t.parquet", table.schema, table_layout)
        for start in range(0, len(keys), batch_rows):
            writer.write(table.slice(start, batch_rows))
        writer.close()
    written = pq.read_table(folder / "t.parquet")
    assert written.equals(layout.in_file_order(table, "key"))
    assert [p.name for p in folder.iterdir()] == ["t.parquet"]
    metadata = pq.ParquetFile(folder / "t.parquet").metadata
    assert metadata.num_row_groups == max(1, -(-len(keys) // group_rows))


def test_the_file_declares_its_order_and_has_a_page_index(tmp_path: Path) -> None:
    table = pa.table({"id": ["c", "a", "b"], "key": ["y", None, "x"]})
    table_layout = layout.Layout(sort_by="key", row_group_rows=2, page_index=True)
    writer = layout.ParquetTableWriter(tmp_path / "t.parquet", table.schema, table_layout)
    writer.write(table)
    writer.close()
    parquet = pq.ParquetFile(tmp_path / "t.parquet")
    assert parquet.read().column("id").to_pylist() == ["b", "c", "a"]  # nulls last
    group = parquet.metadata.row_group(0)
    assert group.sorting_columns == (pq.SortingColumn(1, descending=False, nulls_first=False),)
    assert group.column(1).has_column_index and group.column(1).has_offset_index
    assert (group.column(1).statistics.min, group.column(1).statistics.max) == ("x", "y")
