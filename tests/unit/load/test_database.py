"""The SQLite database loaded from the published package."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import frictionless
import pytest
import sqlite_utils

from coop100.load.database import load_database, read_descriptor
from coop100.problems import DatabaseError
from coop100.serving import FACETS, FTS_COLUMNS, VIEWS
from coop100.settings import DESCRIPTOR
from coop100.site.build import Site
from coop100.write.archive import package_files, write_zip
from tests.site_fixtures import copy_package


@pytest.fixture(scope="module")
def db(site: Site) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(f"file:{site.db_path}?immutable=1", uri=True))


@pytest.fixture(scope="module")
def schemas(site_root: Path) -> dict[str, dict]:
    descriptor = read_descriptor(site_root / DESCRIPTOR)
    return {r["name"]: r["schema"] for r in descriptor["resources"] if r["format"] == "csv"}


def test_every_table_has_the_package_rows(db, package_rows):
    assert {name: db.table(name).count for name in package_rows} == {
        name: len(rows) for name, rows in package_rows.items()
    }


def test_primary_and_foreign_keys_come_from_the_schemas(db, schemas):
    for name, schema in schemas.items():
        table = db.table(name)
        assert table.pks == schema["primaryKey"], name
        expected = {
            (column, fk["reference"]["resource"] or name, other)
            for fk in schema.get("foreignKeys", [])
            for column, other in zip(fk["fields"], fk["reference"]["fields"], strict=True)
        }
        found = {(fk.column, fk.other_table, fk.other_column) for fk in table.foreign_keys}
        assert found == expected, name


def test_every_foreign_key_column_is_indexed(db, schemas):
    for name, schema in schemas.items():
        indexes = [index.columns for index in db.table(name).indexes]
        for fk in schema.get("foreignKeys", []):
            # The key leads an index: its own, or the table's order index.
            fields = list(fk["fields"])
            assert any(columns[: len(fields)] == fields for columns in indexes), (name, fields)


def test_every_faceted_column_is_indexed(db):
    for table, facets in FACETS.items():
        if table in db.view_names():
            continue
        # The facet column leads an index (alone, or before the page's order).
        leading = {index.columns[0] for index in db.table(table).indexes}
        for facet in facets:
            if isinstance(facet, str):
                assert facet in leading, (table, facet)


def test_foreign_keys_hold(db):
    assert db.execute("pragma foreign_key_check").fetchall() == []


def test_column_types_follow_the_schemas(db, schemas):
    sqlite_type = {"integer": "INTEGER", "boolean": "INTEGER", "number": "FLOAT"}
    for name, schema in schemas.items():
        columns = {c.name: c.type for c in db.table(name).columns}
        assert columns == {f["name"]: sqlite_type.get(f["type"], "TEXT") for f in schema["fields"]}


def test_full_text_search_uses_porter_stemming(db):
    for table, columns in FTS_COLUMNS.items():
        fts = db.table(table).detect_fts()
        assert fts == f"{table}_fts"
        assert "tokenize='porter'" in db.table(fts).schema
        assert [c.name for c in db.table(fts).columns] == list(columns)
    # "displaced" finds "displacement" only through the stemmer
    hits = db.execute(
        "select s.text from statements_fts join statements s on s.rowid = statements_fts.rowid "
        "where statements_fts match 'displaced'"
    ).fetchall()
    assert hits and all("displacement" in text.lower() for (text,) in hits)


def test_views_exist_and_current_affiliations_are_preferred_and_current(db, package_rows):
    assert set(db.view_names()) == {view.name for view in VIEWS}
    expected = {
        r["affiliation_id"]
        for r in package_rows["affiliations"]
        if r["preferred"] == "true" and r["former"] == "false"
    }
    found = {r["affiliation_id"] for r in db.view("current_affiliations").rows}
    assert found == expected
    detailed = {r["statement_id"]: r for r in db.view("statements_detailed").rows}
    assert set(detailed) == {r["statement_id"] for r in package_rows["statements"]}
    topics = {}
    for row in package_rows["statement_topics"]:
        topics.setdefault(row["statement_id"], []).append(row["topic_id"])
    for statement_id, row in detailed.items():
        assert json.loads(row["topics"]) == sorted(topics.get(statement_id, []))
        assert row["speaker"]


# The views as joins, the plain way to write them: the views use subqueries so
# that a count or a search reads one table, and must give these rows.
_JOINED = {
    "statements_detailed": """
        select s.statement_id, s.type, s.text,
          coalesce(p.name, so.name) as speaker, coalesce(ao.name, so.name) as organisation,
          e.name as event, pa.speaking_order,
          (select json_group_array(topic_id) from (select topic_id from statement_topics st
            where st.statement_id = s.statement_id order by topic_id)) as topics,
          s.source_id, s.paragraph
        from statements s
        join events e on e.event_id = s.event_id
        left join people p on p.person_id = s.person_id
        left join organisations so on so.organisation_id = s.organisation_id
        left join participations pa on pa.person_id = s.person_id and pa.event_id = s.event_id
        left join affiliations a on a.affiliation_id = pa.affiliation_id
        left join organisations ao on ao.organisation_id = a.organisation_id
    """,
    "current_affiliations": """
        select a.affiliation_id, p.name as person, a.role, o.name as organisation, a.start,
          a.person_id, a.organisation_id, a.source_id
        from affiliations a
        join people p on p.person_id = a.person_id
        left join organisations o on o.organisation_id = a.organisation_id
        where a.preferred = 1 and a.former = 0
    """,
}


@pytest.mark.parametrize("view", sorted(_JOINED))
def test_views_give_the_rows_their_joins_give(db, view):
    joined = sorted(db.execute(_JOINED[view]).fetchall())
    assert joined
    assert sorted(db.execute(f"select * from [{view}]").fetchall()) == joined


def test_view_counts_read_one_table(db):
    """No join or sort in a view's count: the plan is a single scan or index search."""
    for view in VIEWS:
        sql = f"explain query plan select count(*) from [{view.name}]"
        plan = [row[3] for row in db.execute(sql)]
        assert len(plan) == 1, (view.name, plan)


def test_the_same_package_gives_the_same_database(site_root, tmp_path):
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    load_database(site_root / DESCRIPTOR, first)
    load_database(site_root / DESCRIPTOR, second)
    dumps = [list(sqlite3.connect(path).iterdump()) for path in (first, second)]
    assert dumps[0] == dumps[1]
    assert first.read_bytes() == second.read_bytes()


def test_the_zip_holds_the_whole_package_with_fixed_bytes(site_root, tmp_path):
    first = write_zip(site_root / DESCRIPTOR, tmp_path / "a.zip")
    second = write_zip(site_root / DESCRIPTOR, tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()
    folder = "ilo-coop-100-" + read_descriptor(site_root / DESCRIPTOR)["version"]
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == [f"{folder}/{n}" for n in sorted(package_files(site_root / DESCRIPTOR))]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        for name in names:
            assert archive.read(name) == (site_root / name.removeprefix(f"{folder}/")).read_bytes()
        archive.extractall(tmp_path / "unzipped")
    # One folder, named after the package and its version, that validates as it is.
    assert [p.name for p in (tmp_path / "unzipped").iterdir()] == [folder]
    report = frictionless.validate(str(tmp_path / "unzipped" / folder / DESCRIPTOR))
    assert report.valid, report.flatten(["title", "note"])[:5]


def _break(root: Path, table: str, old: str, new: str) -> None:
    path = root / "build" / "csv" / f"{table}.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


def test_a_broken_foreign_key_is_refused(tmp_path):
    root = copy_package(tmp_path)
    _break(root, "statement_topics", '"history"', '"no-such-topic"')
    with pytest.raises(DatabaseError, match=r"broken foreign key\(s\), first: statement_topics"):
        load_database(root / DESCRIPTOR, tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


def test_a_header_that_differs_from_the_schema_is_refused(tmp_path):
    root = copy_package(tmp_path)
    _break(root, "topics", "topic_id,label", "topic,label")
    with pytest.raises(DatabaseError, match=r"topics.csv: header \['topic', 'label'"):
        load_database(root / DESCRIPTOR, tmp_path / "x.db")


def test_a_row_with_a_missing_cell_is_refused(tmp_path):
    root = copy_package(tmp_path)
    _break(root, "topics", '\n"history",', '\n"history"\n')
    with pytest.raises(DatabaseError, match=r"topics.csv: .*columns"):
        load_database(root / DESCRIPTOR, tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()
    assert list(tmp_path.glob(".tmp-*")) == []


def test_a_cell_of_the_wrong_type_is_refused_with_its_column(tmp_path):
    root = copy_package(tmp_path)
    path = root / "build" / "csv" / "participations.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("speaking_order")] = "first"
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(DatabaseError, match=r"participations.csv: speaking_order: 'first' is not"):
        load_database(root / DESCRIPTOR, tmp_path / "x.db")


_KEYED = """
create table parent (a text, b text, label text unique, primary key (a, b));
create table child (
  id text primary key, x text, y text, name text references parent (label),
  up text references child (id), foreign key (x, y) references parent (a, b)
);
create index child_xy on child (x, y);
create table loose (p text references parent);
"""


@pytest.mark.parametrize(
    ("rows", "found"),
    [
        ([("1", "a", "one", None)], True),
        ([("1", "b", "one", None)], False),  # the pair is missing, each half is there
        ([("1", None, "one", None)], True),  # a key with a null is never checked
        ([("1", "a", "two", None)], False),  # a single-column key
        ([("1", "a", None, "c0")], True),  # refers to its own table
        ([("1", "a", None, "c9")], False),
    ],
)
def test_each_distinct_key_is_asked_as_sqlite_asks_each_row(
    rows: list[tuple[str | None, ...]], found: bool
) -> None:
    from coop100.load.database import keys_found

    db = sqlite3.connect(":memory:")
    db.executescript(_KEYED)
    db.execute("insert into parent values ('1', 'a', 'one'), ('2', 'a', 'uno')")
    db.executemany(
        "insert into child values (?, ?, ?, ?, ?)",
        [(f"c{i}", *row) for i, row in enumerate(rows * 3)],
    )
    assert keys_found(db, "child") is found
    assert found == (db.execute("pragma foreign_key_check(child)").fetchall() == [])
    # A key naming no parent column (its primary key) is left to the pragma.
    db.execute("insert into loose values ('1')")
    assert keys_found(db, "loose") is False
