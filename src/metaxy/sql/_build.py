"""Small constructors for sqlglot expression trees.

Every identifier built here is quoted; every value is a literal node. Nothing in the SQL layer
concatenates SQL text: statements are trees, rendered by sqlglot's generator for one dialect.
The constructors build nodes directly (no string parsing, no deep copies) because a resolve
statement has a few thousand nodes and is built on every call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlglot import exp

__all__ = [
    "alias",
    "and_all",
    "asc",
    "col",
    "desc",
    "func",
    "ident",
    "lit",
    "or_all",
    "project",
    "select",
    "star",
    "subquery",
    "table",
]


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: ``"name"`` in every dialect."""
    return exp.Identifier(this=name, quoted=True)


def col(name: str, source: str | None = None) -> exp.Column:
    """A column reference, qualified with a (quoted) table alias when ``source`` is given."""
    return exp.Column(this=ident(name), table=ident(source) if source else None)


def lit(value: str | int | bool | None) -> exp.Expression:
    """A literal: string, integer, boolean or NULL."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def alias(expression: exp.Expression, name: str) -> exp.Alias:
    return exp.Alias(this=expression, alias=ident(name))


def table(name: str) -> exp.Table:
    return exp.Table(this=ident(name))


def subquery(query: exp.Expression, name: str) -> exp.Subquery:
    """``(query) AS "name"`` (PostgreSQL needs an alias on every derived table)."""
    return exp.Subquery(this=query, alias=exp.TableAlias(this=ident(name)))


def star() -> exp.Star:
    return exp.Star()


def func(name: str, *args: exp.Expression) -> exp.Anonymous:
    """A function call by its exact name in the target dialect."""
    return exp.Anonymous(this=name, expressions=list(args))


def asc(expression: exp.Expression) -> exp.Ordered:
    """Ascending, NULLs last (the Polars reference's order)."""
    return exp.Ordered(this=expression, desc=False, nulls_first=False)


def desc(expression: exp.Expression) -> exp.Ordered:
    """Descending, NULLs last (the Polars reference's order)."""
    return exp.Ordered(this=expression, desc=True, nulls_first=False)


def and_all(conditions: Iterable[exp.Expression]) -> exp.Expression | None:
    """The conjunction of ``conditions`` (each parenthesised), None when there are none."""
    return _connect(exp.And, list(conditions))


def or_all(conditions: Iterable[exp.Expression]) -> exp.Expression | None:
    return _connect(exp.Or, list(conditions))


def _connect(kind: type[exp.Connector], parts: list[exp.Expression]) -> exp.Expression | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    wrapped: list[exp.Expression] = [p if isinstance(p, exp.Column | exp.Boolean) else exp.Paren(this=p) for p in parts]
    out: exp.Expression = wrapped[0]
    for p in wrapped[1:]:
        out = cast(exp.Expression, kind(this=out, expression=p))
    return out


def select(
    items: Sequence[exp.Expression],
    source: exp.Expression,
    *,
    where: exp.Expression | None = None,
    group_by: Sequence[exp.Expression] = (),
) -> exp.Select:
    """``SELECT items FROM source [WHERE where] [GROUP BY group_by]``."""
    query = exp.Select(expressions=list(items))
    query.set("from_", exp.From(this=source))
    if where is not None:
        query.set("where", exp.Where(this=where))
    if group_by:
        query.set("group", exp.Group(expressions=list(group_by)))
    return query


_NOT_A_PROJECTION = ("joins", "group", "having", "order", "limit", "offset", "qualify", "distinct", "settings", "with_")


def project(query: exp.Select, items: Sequence[exp.Expression], name: str) -> exp.Select:
    """``SELECT items FROM (query) AS name``, the items referring to ``query``'s output columns.

    When ``query`` only picks or renames columns of one derived table, the items are written
    into its select list instead (their column references replaced by what ``query`` selects):
    one nesting level less, which is planning time saved in every engine (ClickHouse plans a
    resolve statement for longer than it runs it at 10k rows). Nothing is computed twice: only
    plain column references are substituted. ``query`` is not modified.
    """
    folded = _fold(query, items)
    return folded if folded is not None else select(items, subquery(query, name))


def _fold(query: exp.Select, items: Sequence[exp.Expression]) -> exp.Select | None:
    from_ = query.args.get("from_")
    if from_ is None or not isinstance(from_.this, exp.Subquery):
        return None
    if any(query.args.get(k) for k in _NOT_A_PROJECTION):
        return None
    outputs: dict[str, exp.Column] = {}
    star_ = False
    for e in query.expressions:
        if isinstance(e, exp.Star):
            star_ = True
        elif isinstance(e, exp.Column) and not e.table:
            outputs[e.name] = e
        elif isinstance(e, exp.Alias) and isinstance(e.this, exp.Column) and not e.this.table:
            outputs[e.alias] = e.this
        else:
            return None
    used: set[str] = set()
    named: set[str] = set()
    out: list[exp.Expression] = []
    for item in items:
        if not isinstance(item, exp.Column | exp.Alias) or (isinstance(item, exp.Column) and item.table):
            return None  # every item must be named, by its column or an alias
        new = item.copy()
        columns = [new] if isinstance(new, exp.Column) else list(new.find_all(exp.Column))
        for column in columns:
            if column.table:
                return None
            source = outputs.get(column.name) or (column if star_ else None)
            if source is None:
                return None
            used.add(source.name)
            if source is not column:
                if column is new:
                    new = source.copy()
                    if item.name != source.name:
                        new = alias(new, item.name)
                else:
                    column.replace(source.copy())
        if isinstance(new, exp.Alias) and not (isinstance(new.this, exp.Column) and new.this.name == new.alias):
            named.add(new.alias)
        out.append(new)
    where = query.args.get("where")
    used |= {c.name for c in where.find_all(exp.Column)} if where is not None else set()
    if named & used:
        return None  # a new alias would share a name with a column still read: keep the level
    folded = query.copy()
    folded.set("expressions", out)
    return folded
