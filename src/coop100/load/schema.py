"""The tables of the database: CREATE TABLE from a Table Schema, and the indexes its pages need."""

from __future__ import annotations

from typing import Any

from coop100.serving import SORT, column_facets

# Table Schema type -> SQLite column type; anything else (date, time, ...) is TEXT.
_SQLITE_TYPES = {"integer": "INTEGER", "number": "FLOAT", "boolean": "INTEGER"}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def page_order(resource: dict[str, Any]) -> list[str]:
    """The order a table page shows its rows in: the sort column, then the primary key."""
    order = [SORT[resource["name"]]] if resource["name"] in SORT else []
    return order + [c for c in as_list(resource["schema"].get("primaryKey", [])) if c not in order]


def order_index(resource: dict[str, Any]) -> list[str] | None:
    """A unique index in a sorted table's page order, or None for one sorted by its key.

    A page, and the canned queries, read rows in this order and stop at the page
    size instead of sorting the whole table (events by date, affiliations by
    claim). Ending with the primary key makes it unique, which tells SQLite each
    row is one step of the order, so joins sorted by it stream too.
    """
    if resource["name"] not in SORT:
        return None
    return page_order(resource)


def facet_indexes(resource: dict[str, Any]) -> list[tuple[str, ...]]:
    """Indexes for the facet columns that are not foreign keys (those have their own).

    Each is followed by the page's default order (the table's sort column, then its
    primary key), so a page filtered to one facet value (type=claim, half the
    statements) reads its first rows in order instead of sorting the whole group,
    and its row count reads the index alone.
    """
    schema = resource["schema"]
    keys = {c for fk in schema.get("foreignKeys", []) for c in as_list(fk["fields"])}
    order = page_order(resource)
    return [
        (column, *[c for c in order if c != column])
        for column in column_facets(resource["name"])
        if column not in keys
    ]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(resource: dict[str, Any]) -> str:
    """The table with its keys, laid out as sqlite-utils lays out its own CREATE TABLE."""
    schema = resource["schema"]
    pk = as_list(schema.get("primaryKey", []))
    # Declared here rather than added afterwards (sqlite-utils' add_foreign_keys
    # copies every table once per call); SQLite lets a table refer to one that
    # does not exist yet, as sources and organisations refer to each other.
    references = {
        column: (other, other_column) for _, column, other, other_column in foreign_keys(resource)
    }
    lines = []
    for spec in schema["fields"]:
        name = spec["name"]
        line = f"   {quote(name)} {_SQLITE_TYPES.get(spec.get('type', 'string'), 'TEXT')}"
        if pk == [name]:
            line += " PRIMARY KEY"
        if name in pk or spec.get("constraints", {}).get("required"):
            line += " NOT NULL"
        if name in references:
            other, other_column = references[name]
            line += f" REFERENCES {quote(other)}({quote(other_column)})"
        lines.append(line)
    if len(pk) > 1:
        lines.append(f"   PRIMARY KEY ({', '.join(map(quote, pk))})")
    return f"CREATE TABLE {quote(resource['name'])} (\n" + ",\n".join(lines) + "\n)"


def foreign_keys(resource: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    found = []
    for fk in resource["schema"].get("foreignKeys", []):
        reference = fk["reference"]
        # An empty or missing resource means the table refers to itself.
        other = reference.get("resource") or resource["name"]
        for column, other_column in zip(
            as_list(fk["fields"]), as_list(reference["fields"]), strict=True
        ):
            found.append((resource["name"], column, other, other_column))
    return found
