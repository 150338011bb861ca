"""Compiling the filter AST to Polars and narwhals expressions, with SQL three-valued logic."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import polars as pl

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


def _like_regex(pattern: str, case_insensitive: bool) -> str:
    """Anchored regex for a SQL LIKE pattern; valid for Rust ``regex``, RE2 and Python ``re``."""
    out = ["(?is)^" if case_insensitive else "(?s)^"]
    for char in pattern:
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif char.isascii() and not char.isalnum():
            out.append(f"\\x{ord(char):02X}")  # escape every ASCII symbol, portably
        else:
            out.append(char)
    out.append("$")
    return "".join(out)


# --- DataFrame compilation ----------------------------------------------------------------------

_COMPARE_FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH_FUNCS: dict[str, Callable[[Any, Any], Any]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@dataclass(frozen=True)
class _Backend:
    col: Callable[[str], Any]
    lit: Callable[[Any], Any]
    null_bool: Callable[[], Any]
    any_of: Callable[[list[Any]], Any]
    all_of: Callable[[list[Any]], Any]


_POLARS = _Backend(
    col=pl.col,
    lit=pl.lit,
    null_bool=lambda: pl.lit(None, dtype=pl.Boolean),
    any_of=lambda exprs: pl.any_horizontal(*exprs),
    all_of=lambda exprs: pl.all_horizontal(*exprs),
)
_NARWHALS = _Backend(
    col=nw.col,
    lit=nw.lit,
    null_bool=lambda: nw.lit(None, dtype=nw.Boolean),
    any_of=lambda exprs: nw.any_horizontal(*exprs, ignore_nulls=False),
    all_of=lambda exprs: nw.all_horizontal(*exprs, ignore_nulls=False),
)


def _compile(node: _Node, be: _Backend) -> Any:
    if isinstance(node, _Col):
        return be.col(node.name)
    if isinstance(node, _Lit):
        return be.lit(node.value)
    if isinstance(node, _Neg):
        # ``* -1`` rather than unary ``-``: narwhals Expr has no ``__neg__`` before 2.21.1
        return _compile(node.operand, be) * -1
    if isinstance(node, _Arith):
        return _ARITH_FUNCS[node.op](_compile(node.left, be), _compile(node.right, be))
    if isinstance(node, _Cmp):
        return _COMPARE_FUNCS[node.op](_compile(node.left, be), _compile(node.right, be))
    if isinstance(node, _IsNull):
        operand = _compile(node.operand, be)
        return ~operand.is_null() if node.negated else operand.is_null()
    if isinstance(node, _In):
        operand = _compile(node.operand, be)
        present = [v for v in node.values if v.kind != "null"]
        if len(present) > 1 and all(v.kind == "str" for v in present):
            # one hash-set lookup per row; ``is_in`` is strict about types, so only for strings
            tests = [operand.is_in([v.value for v in present])]
        else:
            tests = [operand == be.lit(v.value) for v in present]
        if any(v.kind == "null" for v in node.values):
            if tests:
                tests.append(be.null_bool())
            else:  # ``x IN (NULL)`` is NULL on every row; keep it row-wise (narwhals needs that)
                is_null = operand.is_null()
                tests.append((is_null | ~is_null) & be.null_bool())
        result = tests[0] if len(tests) == 1 else be.any_of(tests)
        return ~result if node.negated else result
    if isinstance(node, _Between):
        operand = _compile(node.operand, be)
        result = (operand >= _compile(node.low, be)) & (operand <= _compile(node.high, be))
        return ~result if node.negated else result
    if isinstance(node, _Like):
        result = _compile(node.operand, be).str.contains(_like_regex(node.pattern, node.case_insensitive))
        return ~result if node.negated else result
    if isinstance(node, _Not):
        return ~_compile(node.operand, be)
    parts = [_compile(op, be) for op in node.operands]
    if len(parts) > 2:  # flat, not a left-deep tree whose depth the optimisers walk repeatedly
        return be.all_of(parts) if node.op == "and" else be.any_of(parts)
    combine = operator.and_ if node.op == "and" else operator.or_
    return functools.reduce(combine, parts)
