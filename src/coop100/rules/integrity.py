"""Rules across records: unique keys, references, loops, preferred claims, names, answers.

Each rule is written once, over the Arrow tables of every record (YAML and bulk
together, in file order), and returns Problems that have a table, a row, a field,
a message and a hint, but no place yet: each reader (records.py for YAML, bulk.py
for JSON Lines) places them, so the words are the same whatever the format.

A row that failed its model is not in the tables, but its values still count as
known (`Failed`), and a table whose file could not be read is not judged at all:
one mistake is reported once, not again at every row that refers to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from coop100.problems import Problem
from coop100.rules.checks import Mask, repeated_keys, row_key
from coop100.rules.models import MODEL_BY_TABLE, MODELS, Sourced

# Past this many problems from one rule, the rest are not listed.
MAX_LISTED = 1000
# A did-you-mean hint compares a wrong id with at most this many known ones.
SUGGEST_MAX_KEYS = 10_000
# (table, id field, parent field) of the tables whose rows nest.
PARENT_LINKS = (
    ("organisations", "organisation_id", "parent_organisation_id"),
    ("events", "event_id", "parent_event_id"),
)
ANSWER_RULE = "a statement may only answer an earlier statement of the same event"
# The tables whose rows rest on a source, and whether such a row must name a
# paragraph of a source that numbers them.
SOURCED = tuple((m.table, m.paragraph_required) for m in MODELS if issubclass(m, Sourced))
_REQUIRED = dict(SOURCED)


@dataclass
class Failed:
    """What the rules take as present though it is not in the tables."""

    # Rows that failed their model, as given, by table.
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Tables whose file (or part of it) could not be read.
    unread: set[str] = field(default_factory=set)

    def values(self, table: str, name: str) -> pa.Array:
        return pa.array([str(r.get(name)) for r in self.rows.get(table, [])], pa.string())


def suggest(value: str, choices: Iterable[str]) -> str:
    """A did-you-mean hint, or ''."""
    import difflib  # only a mistake needs it

    near = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.75)
    return f"did you mean '{near[0]}'?" if near else ""


def check_tables(tables: dict[str, pa.Table], failed: Failed | None = None) -> list[Problem]:
    """Every problem across records, each at a table, row and field but no place."""
    failed = failed or Failed()
    keys = {m.table: row_key(tables[m.table], m.primary_key) for m in MODELS}
    problems = _duplicates(keys)
    problems += _dangling(tables, keys, failed)
    problems += _loops(tables)
    problems += _preferred(tables, "affiliations", "claim_key", failed)
    problems += _preferred(tables, "person_names", "person_id", failed, known=keys["people"])
    problems += _names(tables)
    problems += _participations(tables, keys)
    problems += _answers(tables)
    problems += _paragraphs(tables, failed)
    return problems


def _rows(mask: Mask) -> list[int]:
    rows: list[int] = pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()
    return rows[:MAX_LISTED]


def _duplicates(keys: dict[str, Mask]) -> list[Problem]:
    problems = []
    for model in MODELS:
        later, first = repeated_keys(keys[model.table])
        for row in _rows(later):
            problems.append(
                Problem(
                    table=model.table,
                    row=row,
                    field=model.primary_key[-1],
                    message="duplicate id",
                    hint="give each its own id",
                    other=first[keys[model.table][row].as_py()],
                )
            )
    return problems


def _dangling(tables: dict[str, pa.Table], keys: dict[str, Mask], failed: Failed) -> list[Problem]:
    problems = []
    for model in MODELS:
        for name, (target, target_field) in model.foreign_keys.items():
            if target in failed.unread:
                continue
            values = tables[model.table][name]
            known = pc.or_(
                pc.is_in(values, keys[target]),
                pc.is_in(values, failed.values(target, target_field)),
            )
            listed = _rows(pc.and_(pc.is_valid(values), pc.invert(known)))
            choices = keys[target].to_pylist() if len(keys[target]) <= SUGGEST_MAX_KEYS else []
            for row in listed:
                value = values[row].as_py()
                problems.append(
                    Problem(
                        table=model.table,
                        row=row,
                        field=name,
                        message=f"'{value}' is not a known {target} id",
                        hint=suggest(value, choices),
                    )
                )
    return problems


def loops_back(parent: dict[str, str | None], start: str) -> bool:
    """Whether following parent links from start comes back to start."""
    seen = {start}
    current = parent.get(start)
    while current is not None and current in parent:
        if current == start:
            return True
        if current in seen:
            return False  # a loop further up, reported from its own rows
        seen.add(current)
        current = parent.get(current)
    return False


def _loops(tables: dict[str, pa.Table]) -> list[Problem]:
    # Organisations and events are a few tens of thousands even at a million
    # statements: walking their parent links in Python costs little.
    problems = []
    for table, id_field, parent_field in PARENT_LINKS:
        ids = tables[table][id_field].to_pylist()
        parent = dict(zip(ids, tables[table][parent_field].to_pylist(), strict=True))
        for row, start in enumerate(ids):
            if loops_back(parent, start):
                problems.append(
                    Problem(
                        table=table,
                        row=row,
                        field=parent_field,
                        message=f"parents loop back to '{start}'",
                        hint="break the loop",
                    )
                )
    return problems


def _preferred(
    tables: dict[str, pa.Table],
    table: str,
    group_field: str,
    failed: Failed,
    known: Mask | None = None,
) -> list[Problem]:
    """Exactly one row of each group is preferred."""
    if table in failed.unread:
        return []
    rows = tables[table]
    numbered = pa.table(
        {
            "group": rows[group_field],
            "preferred": pc.cast(rows["preferred"], pa.int64()),
            "row": pa.array(range(rows.num_rows), pa.int64()),
        }
    )
    groups = numbered.group_by("group", use_threads=False).aggregate(
        [("preferred", "sum"), ("row", "min")]
    )
    # A dangling group (already reported) or one holding a row that failed its
    # model cannot be judged until that is fixed.
    judged = pc.invert(pc.is_in(groups["group"], failed.values(table, group_field)))
    if known is not None:
        judged = pc.and_(judged, pc.is_in(groups["group"], known))
    bad = groups.filter(pc.and_(judged, pc.not_equal(groups["preferred_sum"], 1)))
    if bad.num_rows == 0:
        return []
    chosen = numbered.filter(
        pc.and_(pc.is_in(numbered["group"], bad["group"]), pc.equal(numbered["preferred"], 1))
    )
    by_group: dict[str, list[int]] = {}
    for group, row in zip(chosen["group"].to_pylist(), chosen["row"].to_pylist(), strict=True):
        by_group.setdefault(group, []).append(row)
    key = row_key(rows, MODEL_BY_TABLE[table].primary_key)
    problems = []
    for group, first_row in zip(bad["group"].to_pylist(), bad["row_min"].to_pylist(), strict=True):
        preferred = by_group.get(group, [])
        if preferred:
            message = (
                f"{len(preferred)} rows with {group_field} '{group}' are preferred "
                f"(first {key[preferred[0]].as_py()})"
            )
        else:
            message = f"no row with {group_field} '{group}' is preferred"
        for row in preferred[1:] or [first_row]:
            problems.append(
                Problem(
                    table=table,
                    row=row,
                    field="preferred",
                    message=message,
                    hint="mark exactly one",
                )
            )
        if len(problems) >= MAX_LISTED:
            break
    return problems


def _last_index(values: Mask, value_set: Mask) -> Mask:
    """For each value, the row of value_set holding it last (null: none)."""
    n = len(value_set)
    reversed_set = value_set.take(pa.array(range(n - 1, -1, -1), pa.int64()))
    return pc.subtract(n - 1, pc.index_in(values, value_set=reversed_set))


def _names(tables: dict[str, pa.Table]) -> list[Problem]:
    """A person's name is their preferred spelling (the last, if several are preferred)."""
    names = tables["person_names"]
    preferred = names.filter(pc.equal(names["preferred"], True))
    people = tables["people"]
    at = _last_index(people["person_id"], preferred["person_id"])
    spelling = pc.take(preferred["name"], at)
    differs = pc.fill_null(pc.not_equal(people["name"], spelling), False)
    return [
        Problem(
            table="people",
            row=row,
            field="name",
            message=f"'{people['name'][row].as_py()}' differs from the preferred spelling "
            f"'{spelling[row].as_py()}' in person_names",
            hint="make them equal",
        )
        for row in _rows(differs)
    ]


def _participations(tables: dict[str, pa.Table], keys: dict[str, Mask]) -> list[Problem]:
    """A participation's affiliation is one of the same person's."""
    parts, affiliations = tables["participations"], tables["affiliations"]
    at = pc.index_in(parts["affiliation_id"], value_set=keys["affiliations"])
    holder = pc.take(affiliations["person_id"], at)
    people = keys["people"]
    # A person that is not known is already reported as dangling.
    judged = pc.and_(pc.is_in(holder, people), pc.is_in(parts["person_id"], people))
    wrong = pc.and_(judged, pc.not_equal(holder, parts["person_id"]))
    return [
        Problem(
            table="participations",
            row=row,
            field="affiliation_id",
            message=f"'{parts['affiliation_id'][row].as_py()}' belongs to "
            f"'{holder[row].as_py()}', not '{parts['person_id'][row].as_py()}'",
        )
        for row in _rows(wrong)
    ]


def _paragraph_rule(rows: pa.Table, sources: pa.Table, required: bool) -> tuple[Mask, pa.Array]:
    """The rows that cite a paragraph their source lacks, or (if required) cite none of a
    source that numbers them; and each row's source's count of paragraphs."""
    at = pc.index_in(rows["source_id"], value_set=sources["source_id"])
    known = pc.is_valid(at)  # an unknown source is reported as dangling
    has = pc.take(sources["paragraphs"], at)
    given = pc.is_valid(rows["paragraph"])
    unnumbered = pc.and_(pc.and_(known, given), pc.is_null(has))
    beyond = pc.fill_null(pc.greater(rows["paragraph"], has), False)
    wrong = pc.or_(unnumbered, beyond)
    if required:
        wrong = pc.or_(wrong, pc.and_(pc.and_(known, pc.invert(given)), pc.is_valid(has)))
    return wrong, has


class CitedParagraphs:
    """The paragraph rule judged on each batch as the build streams the tables (a Feed).

    The sources are few and read before any batch (they stay YAML), so each batch
    is checked against them in Arrow as it passes, which costs the build nothing it
    notices; where SQLite would scan every table again. `broken` says which table
    broke it first; the whole read (_paragraphs) then says where and why.
    """

    def __init__(self, sources: pa.Table) -> None:
        self.sources = sources
        self.broken: list[str] = []

    def add(self, table: str, batch: pa.Table) -> None:
        if self.broken or table not in _REQUIRED:
            return
        wrong, _ = _paragraph_rule(batch, self.sources, _REQUIRED[table])
        rows = _rows(wrong)
        if rows:
            key = batch[MODEL_BY_TABLE[table].primary_key[0]][rows[0]].as_py()
            self.broken.append(f"paragraphs of {table}: rows like {key!r}")

    def close(self) -> None:
        pass


def _paragraphs(tables: dict[str, pa.Table], failed: Failed) -> list[Problem]:
    """A row cites a paragraph its source has, and must where the source numbers them."""
    if "sources" in failed.unread:
        return []
    sources = tables["sources"]
    problems = []
    for table, required in SOURCED:
        rows = tables[table]
        wrong, has = _paragraph_rule(rows, sources, required)
        given = pc.is_valid(rows["paragraph"])
        for row in _rows(wrong):
            source = rows["source_id"][row].as_py()
            count = has[row].as_py()
            if count is None:
                message = f"cites a paragraph of '{source}', which does not number its paragraphs"
                hint = (
                    f"give '{source}' its count of paragraphs in sources, or remove the paragraph"
                )
            elif not given[row].as_py():
                message = f"a row resting on '{source}' must give its paragraph (1-{count})"
                hint = ""
            else:
                paragraph = rows["paragraph"][row].as_py()
                message = f"cites paragraph {paragraph} of '{source}', which has {count} paragraphs"
                hint = f"cite one of 1-{count}"
            problems.append(
                Problem(table=table, row=row, field="paragraph", message=message, hint=hint)
            )
    return problems


def _answers(tables: dict[str, pa.Table]) -> list[Problem]:
    """A statement answers only an earlier statement (in file order) of its own event.

    Earlier in the records is earlier in the event: statements are recorded in the
    order they were said. So answers can never form a loop.
    """
    statements = tables["statements"]
    answered = statements["responds_to_statement_id"]
    at = pc.index_in(answered, value_set=statements["statement_id"])
    rows = pa.array(range(statements.num_rows), pa.int64())
    their_event = pc.take(statements["event_id"], at)
    later = pc.greater_equal(at, rows)
    elsewhere = pc.not_equal(their_event, statements["event_id"])
    problems = []
    for row in _rows(pc.or_(later, elsewhere)):
        target = answered[row].as_py()
        if elsewhere[row].as_py():
            message = (
                f"answers '{target}', a statement of event '{their_event[row].as_py()}', "
                f"not of its own event '{statements['event_id'][row].as_py()}'"
            )
        else:
            message = f"answers '{target}', which comes after it in the records"
        problems.append(
            Problem(
                table="statements",
                row=row,
                field="responds_to_statement_id",
                message=message,
                hint=ANSWER_RULE,
            )
        )
    return problems


# -- placing: from a row of a table to a file, line and column --------------------------

# (table, row, field) -> (path, line, column) of that field of that row; with the
# field "", of the row itself.
Where = Callable[[str, int, str], tuple[str, int, int]]


def place(
    problems: Iterable[Problem], tables: dict[str, pa.Table], where: Where
) -> Iterator[Problem]:
    """Give each problem a rule found its place, and its record its id."""
    for problem in problems:
        model = MODEL_BY_TABLE[problem.table]
        record = row_key(tables[problem.table], model.primary_key)[problem.row].as_py()
        path, line, column = where(problem.table, problem.row, problem.field)
        message = problem.message
        if problem.other >= 0:
            first_path, first_line, _ = where(problem.table, problem.other, "")
            message += f" (first at {first_path}:{first_line})"
        yield replace(
            problem,
            path=path,
            line=line,
            column=column,
            record=record,
            message=message,
            row=-1,
            other=-1,
        )


# -- the same rules over a database: is any of them broken? ---------------------------
#
# The build streams the records (bulk.stream_tables): no table is ever whole in
# memory, so it cannot run the rules above over Arrow. It loads the rows into
# SQLite instead (coop100.load.database.Load), in the same order, and there asks
# whether any row breaks a rule: unique keys are the tables' primary keys (an
# insert fails), references their foreign keys (pragma foreign_key_check), parent
# loops the rule above over the two small columns it needs, and each rule below
# is a query for one breaking row. The paragraph rule needs only the few sources
# beside each row, so it is judged on each batch as it streams (CitedParagraphs)
# instead. If any is broken, the build reads the records
# again the whole-table way (bulk.read_tables), whose rules above say where and
# why: one judgement, found fast at scale and explained in full.
# tests/unit/rules/test_integrity.py holds every bad-records case to both.

BROKEN_QUERIES: dict[str, str] = {
    "preferred affiliations": """
select claim_key from affiliations where claim_key is not null
group by claim_key having total(preferred) != 1 limit 1""",
    "preferred names": """
select person_id from person_names
where person_id is not null and person_id in (select person_id from people)
group by person_id having total(preferred) != 1 limit 1""",
    "names": """
select p.person_id from people p
where p.name != (
  select n.name from person_names n where n.person_id = p.person_id and n.preferred
  order by n.rowid desc limit 1
) limit 1""",
    "participations": """
select pa.rowid from participations pa
join affiliations a on a.affiliation_id = pa.affiliation_id
where a.person_id != pa.person_id
  and a.person_id in (select person_id from people)
  and pa.person_id in (select person_id from people)
limit 1""",
    "answers": """
select s.statement_id from statements s
join statements t on t.statement_id = s.responds_to_statement_id
where t.rowid >= s.rowid or t.event_id != s.event_id
limit 1""",
}


def broken_rules(conn: Any) -> list[str]:
    """The rules across records that some row of the database on conn breaks.

    The database holds every table with its rows in records order (rowid 1 is row
    0) and its keys checked by SQLite; conn is a sqlite3 connection.
    """
    broken = [
        f"{rule}: rows like {row[0]!r}"
        for rule, sql in BROKEN_QUERIES.items()
        for row in conn.execute(sql).fetchall()
    ]
    parents = {}
    for table, id_field, parent_field in PARENT_LINKS:
        rows = conn.execute(f"select {id_field}, {parent_field} from {table} order by rowid")
        columns = list(zip(*rows.fetchall(), strict=True)) or [(), ()]
        parents[table] = pa.table(
            {
                name: pa.array(values, pa.string())
                for name, values in zip((id_field, parent_field), columns, strict=True)
            }
        )
    broken += [f"{p.table}: {p.message}" for p in _loops(parents)[:1]]
    return broken
