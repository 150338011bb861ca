"""Statements over stored feature tables: the read pipeline, hard deletes and DDL, as sqlglot trees.

The read pipeline is the one the resolve statement uses for every upstream and for the stored
rows: version filter → latest row per id → hide soft-deleted rows → user filters. User filters
arrive parsed (:class:`~metaxy.models.filter_expression.FilterExpression`) and are embedded as
trees; no filter text is pasted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression

from ._build import alias, and_all, col, desc, ident, lit, select, star, subquery, table
from .dialects import SqlDialect

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ROWID",
    "SqlSource",
    "add_column",
    "create_table",
    "create_table_as",
    "delete_where",
    "drop_table",
    "filter_condition",
    "insert_by_name",
    "latest_rows",
]

#: The output column carrying the row identity of a latest row.
ROWID = "__metaxy_rowid"


@dataclass(frozen=True)
class SqlSource:
    """A stored feature table as seen by a statement."""

    table: str
    columns: tuple[str, ...]  # stored column order
    filters: tuple[FilterExpression, ...] = ()  # on stored names, applied after de-duplication
    referenced: tuple[str, ...] = ()  # columns the filters (and staleness predicates) use


def filter_condition(d: SqlDialect, filters: Sequence[FilterExpression]) -> exp.Expression | None:
    """The conjunction of parsed filters as a tree, checked to render faithfully in ``d``."""
    return and_all(f.to_sqlglot(d.name) for f in filters)


def latest_rows(
    d: SqlDialect,
    src: SqlSource,
    id_columns: Sequence[str],
    feature_version: str | None,
    *,
    sample_history: bool = False,
    keep_deleted: bool = False,
    output: Sequence[str] | None = None,
    rowid: bool = False,
) -> exp.Select:
    """The read pipeline: version filter → latest row per id → hide deleted → ``src.filters``.

    The latest row per id has the greatest ``(coalesce(deleted_at, updated_at), data_version,
    provenance)``, NULLs last, as in the Polars reference. ``output`` limits the columns (default:
    all stored columns; filters may only use output columns); ``rowid`` adds the row identity as
    :data:`ROWID` (dialects with one).
    """
    version = exp.EQ(this=col(c.FEATURE_VERSION), expression=lit(feature_version)) if feature_version else None
    names = list(output or src.columns)
    if sample_history:
        where = and_all(
            w
            for w in (version, None if keep_deleted else exp.Is(this=col(c.DELETED_AT), expression=exp.Null()))
            if w is not None
        )
        query = select([star()], table(src.table), where=where)
    else:
        items: list[exp.Expression] = [col(n) for n in names]
        if rowid:
            identity = d.row_id()
            assert identity is not None, f"{d.name} has no row identity"
            items.append(alias(identity, ROWID))
        order = [
            desc(exp.Coalesce(this=col(c.DELETED_AT), expressions=[col(c.UPDATED_AT)])),
            desc(col(c.DATA_VERSION)),
            desc(col(c.PROVENANCE)),
        ]
        kept = None if keep_deleted else exp.Is(this=col(c.DELETED_AT), expression=exp.Null())
        query = d.first_per_group(select(items, table(src.table), where=version), id_columns, order, kept)
    condition = filter_condition(d, src.filters)
    if condition is not None:
        query = select([star()], subquery(query, "__metaxy_filtered"), where=condition)
    return query


def delete_where(name: str, condition: exp.Expression | None) -> exp.Delete:
    """``DELETE FROM name [WHERE condition]``."""
    statement = exp.Delete(this=table(name))
    if condition is not None:
        statement.set("where", exp.Where(this=condition))
    return statement


def drop_table(name: str) -> exp.Drop:
    """``DROP TABLE IF EXISTS name``."""
    return exp.Drop(tables=[table(name)], kind="TABLE", exists=True)


def create_table_as(name: str, query: exp.Expression) -> exp.Create:
    """``CREATE TABLE name AS query`` (the engine derives the column types)."""
    return exp.Create(this=table(name), kind="TABLE", expression=query)


def create_table(d: SqlDialect, name: str, schema: pa.Schema) -> exp.Create:
    """``CREATE TABLE name (column type, ...)`` with the dialect's types for an Arrow schema."""
    columns = [exp.ColumnDef(this=ident(f.name), kind=d.column_type(f.type)) for f in schema]
    return exp.Create(this=exp.Schema(this=table(name), expressions=columns), kind="TABLE")


def add_column(name: str, column: str, dtype: exp.DataType) -> exp.Alter:
    """``ALTER TABLE name ADD COLUMN column dtype``."""
    return exp.Alter(this=table(name), kind="TABLE", actions=[exp.ColumnDef(this=ident(column), kind=dtype)])


def insert_by_name(name: str, source: str) -> exp.Insert:
    """``INSERT INTO name BY NAME SELECT * FROM source`` (DuckDB matches columns by name)."""
    return exp.Insert(this=table(name), by_name=True, expression=select([star()], table(source)))
