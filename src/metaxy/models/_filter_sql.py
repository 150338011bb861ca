"""Rendering the filter AST to sqlglot trees and SQL text, every identifier quoted, checked to read
back unchanged in the target dialect."""

from __future__ import annotations

import datetime as dt
import functools

from sqlglot import exp

from metaxy.errors import FilterParseError
from metaxy.models._filter_ast import (
    _Arith,
    _Between,
    _Cmp,
    _Col,
    _In,
    _IsNull,
    _Like,
    _Lit,
    _Neg,
    _Node,
    _Not,
)
from metaxy.models._filter_parse import _ARITHMETIC, _COMPARISONS, _parse

# --- SQL compilation ------------------------------------------------------------------------

_SQL_COMPARE: dict[str, type[exp.Expression]] = {sym: cls for cls, sym in _COMPARISONS.items()}
_SQL_ARITH: dict[str, type[exp.Expression]] = {sym: cls for cls, sym in _ARITHMETIC.items()}


def _sql_literal(lit: _Lit) -> exp.Expression:
    value = lit.value
    if lit.kind == "null":
        return exp.Null()
    if lit.kind == "bool":
        return exp.Boolean(this=bool(value))
    if lit.kind in ("int", "float"):
        assert isinstance(value, int | float)
        return exp.Literal.number(repr(value))
    if lit.kind == "str":
        return exp.Literal.string(str(value))
    if lit.kind == "date":
        assert isinstance(value, dt.date)
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    assert isinstance(value, dt.datetime)
    if lit.kind == "timestamp":
        return exp.Cast(this=exp.Literal.string(value.isoformat(sep=" ")), to=exp.DataType.build("TIMESTAMP"))
    return exp.Cast(this=exp.Literal.string(value.isoformat(sep=" ")), to=exp.DataType.build("TIMESTAMPTZ"))


def _sql_operand(node: _Node) -> exp.Expression:
    """Child expression, parenthesised unless it is a single column or literal."""
    built = _sql(node)
    if isinstance(node, _Col | _Lit):
        return built
    return exp.Paren(this=built)


def _sql(node: _Node) -> exp.Expression:
    if isinstance(node, _Col):
        return exp.Column(this=exp.Identifier(this=node.name, quoted=True))
    if isinstance(node, _Lit):
        return _sql_literal(node)
    if isinstance(node, _Neg):
        return exp.Neg(this=_sql_operand(node.operand))
    if isinstance(node, _Arith):
        return _SQL_ARITH[node.op](this=_sql_operand(node.left), expression=_sql_operand(node.right))
    if isinstance(node, _Cmp):
        return _SQL_COMPARE[node.op](this=_sql_operand(node.left), expression=_sql_operand(node.right))
    if isinstance(node, _IsNull):
        is_null = exp.Is(this=_sql_operand(node.operand), expression=exp.Null())
        return exp.Not(this=exp.Paren(this=is_null)) if node.negated else is_null
    if isinstance(node, _In):
        in_ = exp.In(this=_sql_operand(node.operand), expressions=[_sql_literal(v) for v in node.values])
        return exp.Not(this=exp.Paren(this=in_)) if node.negated else in_
    if isinstance(node, _Between):
        between = exp.Between(this=_sql_operand(node.operand), low=_sql_operand(node.low), high=_sql_operand(node.high))
        return exp.Not(this=exp.Paren(this=between)) if node.negated else between
    if isinstance(node, _Like):
        like_cls = exp.ILike if node.case_insensitive else exp.Like
        like = like_cls(this=_sql_operand(node.operand), expression=exp.Literal.string(node.pattern))
        return exp.Not(this=exp.Paren(this=like)) if node.negated else like
    if isinstance(node, _Not):
        return exp.Not(this=_sql_operand(node.operand))
    connector = exp.And if node.op == "and" else exp.Or
    parts = [_sql_operand(op) for op in node.operands]
    while len(parts) > 1:  # a balanced tree: depth log(n), the same flat chain when rendered
        paired = [connector(this=a, expression=b) for a, b in zip(parts[::2], parts[1::2], strict=False)]
        parts = paired + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


@functools.lru_cache(maxsize=1024)
def _render_sql(node: _Node, dialect: str) -> str:
    text = _sql(node).sql(dialect=dialect)
    # Defence in depth: what we emit must read back as exactly what we meant.
    try:
        reparsed = _parse(text, dialect=dialect)
    except FilterParseError as exc:
        raise FilterParseError(f"Filter {text!r} cannot be rendered safely for SQL dialect {dialect!r}: {exc}") from exc
    if reparsed != node:
        raise FilterParseError(
            f"Filter {text!r} cannot be rendered safely for SQL dialect {dialect!r}: the generated SQL "
            "reads back differently. Hint: use the 'duckdb' or 'postgres' dialect, or filter in Python."
        )
    return text
