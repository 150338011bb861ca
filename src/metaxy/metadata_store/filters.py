"""Parse user filters once into the filter AST (:class:`~metaxy.models.filter_expression.FilterExpression`).

SQL strings are parsed when they arrive (``coerce_filters``). narwhals expressions are opaque
closures: they are translated by letting narwhals render them as SQL against an empty DuckDB
relation with the table's schema, and parsing that SQL with the same grammar as user strings.
What has no AST form (Polars expressions, narwhals constructs outside the filter grammar) is kept
as it is: a read or resolve then runs that filter in Polars, and a hard delete refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw
import polars as pl

from metaxy.errors import FilterParseError, StoreCapabilityError
from metaxy.models.filter_expression import FilterExpression

from ._frames import FilterLike

__all__ = ["narwhals_to_filter", "parse_filters", "require_parsed"]


def parse_filters(filters: Sequence[FilterLike], schema: pl.Schema | None) -> list[FilterLike]:
    """``filters`` with every narwhals expression that has an AST form replaced by it.

    Args:
        filters: coerced filters (``coerce_filters``): ASTs, narwhals or Polars expressions.
        schema: the schema the filters apply to (None: narwhals expressions are kept).
    """
    if schema is None or not any(isinstance(f, nw.Expr) for f in filters):
        return list(filters)
    return [(narwhals_to_filter(f, schema) or f) if isinstance(f, nw.Expr) else f for f in filters]


def narwhals_to_filter(expr: nw.Expr, schema: pl.Schema) -> FilterExpression | None:
    """The AST of a narwhals boolean expression over ``schema``; None when it has none."""
    import duckdb
    import sqlglot
    from sqlglot import exp

    empty = pl.DataFrame(schema=schema).to_arrow()
    try:
        sql = nw.from_native(duckdb.from_arrow(empty)).filter(expr).to_native().sql_query()
        where = sqlglot.parse_one(sql, read="duckdb").args.get("where")
    except (duckdb.Error, sqlglot.errors.SqlglotError, TypeError, ValueError, AttributeError):
        return None
    if where is None:
        return None

    def to_in(node: exp.Expression) -> exp.Expression:
        # narwhals spells ``is_in`` as ``contains([...], col)``; the filter grammar has ``IN``.
        if isinstance(node, exp.ArrayContains | exp.Contains) and isinstance(node.this, exp.Array):
            return exp.In(this=node.expression, expressions=list(node.this.expressions))
        return node

    condition = where.this.transform(to_in)
    try:
        return FilterExpression.parse(condition.sql("duckdb"))
    except FilterParseError:
        return None


def require_parsed(filters: Sequence[FilterLike], where: str) -> list[FilterExpression]:
    """Every filter as an AST (what the contract's delete primitive takes).

    Raises:
        StoreCapabilityError: a filter has no AST form, naming it.
    """
    out: list[FilterExpression] = []
    for f in filters:
        if not isinstance(f, FilterExpression):
            raise StoreCapabilityError(
                f"{where}: the filter {_shown(f)} has no SQL form, so it cannot be pushed into the store. "
                "Hint: pass the condition as a SQL string (e.g. \"sample_id IN ('a', 'b')\") or a simple "
                "narwhals comparison."
            )
        out.append(f)
    return out


def _shown(f: Any) -> str:
    text = str(f)
    return repr(text if len(text) <= 120 else text[:117] + "...")
