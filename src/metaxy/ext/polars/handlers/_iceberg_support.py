"""Helpers of the Iceberg store: Polars types Iceberg stores unchanged, and the filter AST as a
PyIceberg row filter (for hard deletes).

Nothing here imports ``pyiceberg`` at module level.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from polars.datatypes import DataTypeClass

from metaxy.errors import MetadataSchemaError
from metaxy.models._filter_ast import _Between, _Cmp, _Col, _In, _IsNull, _Like, _Lit, _Logic, _Node, _Not
from metaxy.models.filter_expression import FilterExpression

__all__ = ["UntranslatableFilter", "iceberg_compatible", "to_row_filter"]

# Iceberg has 32- and 64-bit signed integers only (PyIceberg reads int8/int16 back as int32).
_WIDER_SIGNED: dict[Any, pl.DataType] = {
    pl.Int8: pl.Int32(),
    pl.Int16: pl.Int32(),
    pl.UInt8: pl.Int32(),
    pl.UInt16: pl.Int32(),
    pl.UInt32: pl.Int64(),
    pl.UInt64: pl.Int64(),
}


def iceberg_compatible(lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
    """``lf`` cast to types Iceberg stores and reads back unchanged, with the stored columns it
    lacks added as NULLs of their stored types.

    Null-typed columns take the stored type (String for a new column); categoricals become
    strings; small and unsigned integers widen to Int32 / Int64; datetimes become microseconds
    (UTC when zoned); arrays become lists.

    Raises:
        MetadataSchemaError: a column type Iceberg cannot store (Time, Duration, Int128, Object).
    """
    schema = lf.collect_schema()
    casts: list[pl.Expr] = []
    for name, dtype in schema.items():
        target = _iceberg_dtype(dtype, stored.get(name) if stored is not None else None, name, table)
        if target != dtype:
            casts.append(pl.col(name).cast(target))
    missing = [pl.lit(None, dtype).alias(n) for n, dtype in (stored or {}).items() if n not in schema]
    return lf.with_columns(casts + missing) if casts or missing else lf


def _iceberg_dtype(
    dtype: pl.DataType | DataTypeClass, stored: pl.DataType | DataTypeClass | None, column: str, table: str
) -> pl.DataType:
    dtype = dtype() if isinstance(dtype, type) else dtype
    stored = stored() if isinstance(stored, type) else stored
    if dtype == pl.Null:
        return stored if stored is not None else pl.String()
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    if isinstance(dtype, pl.Datetime):
        return pl.Datetime("us", "UTC" if dtype.time_zone else None)
    if dtype.base_type() in _WIDER_SIGNED:
        return _WIDER_SIGNED[dtype.base_type()]
    if dtype == pl.Float16:
        return pl.Float32()
    if isinstance(dtype, pl.List | pl.Array):
        inner_stored = stored.inner if isinstance(stored, pl.List) else None
        return pl.List(_iceberg_dtype(dtype.inner, inner_stored, column, table))
    if isinstance(dtype, pl.Struct):
        stored_fields = {f.name: f.dtype for f in stored.fields} if isinstance(stored, pl.Struct) else {}
        return pl.Struct(
            [pl.Field(f.name, _iceberg_dtype(f.dtype, stored_fields.get(f.name), column, table)) for f in dtype.fields]
        )
    if isinstance(dtype, pl.Time | pl.Duration | pl.Object) or dtype in (pl.Int128, pl.UInt128):
        raise MetadataSchemaError(
            f"Column '{column}' has type {dtype}, which Iceberg cannot store (table '{table}'). "
            "Hint: cast it before writing (e.g. Duration to Int64 microseconds, Time to String)."
        )
    return dtype


# --- the filter AST as a PyIceberg row filter ---------------------------------------------------


class UntranslatableFilter(Exception):
    """A filter node with no exact PyIceberg form (arithmetic, column-to-column comparisons,
    LIKE patterns other than ``'prefix%'``)."""


def to_row_filter(where: FilterExpression) -> Any:
    """The rows where ``where`` is TRUE, as a PyIceberg ``BooleanExpression``.

    SQL's three-valued logic is kept exactly: every comparison is guarded by ``NotNull`` of its
    column and ``NOT`` is pushed down (a NULL comparison is neither TRUE nor FALSE), so the
    expression PyIceberg evaluates is two-valued and matches exactly the rows SQL would delete.

    Raises:
        UntranslatableFilter: the filter uses a construct PyIceberg expressions cannot state.
    """
    return _true(where._node)


def _ops() -> Any:
    import pyiceberg.expressions as ie

    return ie


def _true(node: _Node) -> Any:
    return _translate(node, negate=False)


def _translate(node: _Node, *, negate: bool) -> Any:
    """The rows where ``node`` is TRUE (``negate=False``) or FALSE (``negate=True``)."""
    ie = _ops()
    if isinstance(node, _Not):
        return _translate(node.operand, negate=not negate)
    if isinstance(node, _Logic):
        parts = [_translate(o, negate=negate) for o in node.operands]
        both_and = (node.op == "and") != negate
        out = parts[0]
        for p in parts[1:]:
            out = ie.And(out, p) if both_and else ie.Or(out, p)
        return out
    if isinstance(node, _Lit):
        if node.kind != "bool":
            raise UntranslatableFilter(f"literal {node.value!r} as a condition")
        return ie.AlwaysTrue() if bool(node.value) != negate else ie.AlwaysFalse()
    if isinstance(node, _Col):  # a bare boolean column
        return _guarded(node.name, ie.EqualTo(node.name, not negate))
    if isinstance(node, _IsNull):
        column = _column(node.operand)
        return ie.IsNull(column) if node.negated == negate else ie.NotNull(column)
    if isinstance(node, _Cmp):
        return _comparison(node, negate)
    if isinstance(node, _In):
        return _membership(node, negate != node.negated)
    if isinstance(node, _Between):
        column = _column(node.operand)
        low, high = _literal(node.low), _literal(node.high)
        if negate != node.negated:
            return _guarded(column, ie.Or(ie.LessThan(column, low), ie.GreaterThan(column, high)))
        return _guarded(column, ie.And(ie.GreaterThanOrEqual(column, low), ie.LessThanOrEqual(column, high)))
    if isinstance(node, _Like):
        column = _column(node.operand)
        prefix = node.pattern[:-1]
        if node.case_insensitive or not node.pattern.endswith("%") or any(ch in prefix for ch in "%_"):
            raise UntranslatableFilter(f"LIKE pattern {node.pattern!r}")
        if negate != node.negated:
            return _guarded(column, ie.NotStartsWith(column, prefix))
        return _guarded(column, ie.StartsWith(column, prefix))
    raise UntranslatableFilter(type(node).__name__.strip("_").lower())


_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATED = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _comparison(node: _Cmp, negate: bool) -> Any:
    ie = _ops()
    op = node.op
    if isinstance(node.left, _Col) and isinstance(node.right, _Lit):
        column, value = node.left.name, _literal(node.right)
    elif isinstance(node.right, _Col) and isinstance(node.left, _Lit):
        column, value, op = node.right.name, _literal(node.left), _FLIPPED[op]  # type: ignore[assignment]
    else:
        raise UntranslatableFilter("a comparison that is not column against literal")
    if negate:
        op = _NEGATED[op]  # type: ignore[assignment]
    predicate = {
        "=": ie.EqualTo,
        "!=": ie.NotEqualTo,
        "<": ie.LessThan,
        "<=": ie.LessThanOrEqual,
        ">": ie.GreaterThan,
        ">=": ie.GreaterThanOrEqual,
    }[op](column, value)
    return _guarded(column, predicate)


def _membership(node: _In, negated: bool) -> Any:
    ie = _ops()
    column = _column(node.operand)
    values = [_literal(v) for v in node.values if v.kind != "null"]
    has_null = len(values) < len(node.values)
    if negated:
        # ``x NOT IN (.., NULL)`` is never TRUE; ``x IN (..)`` FALSE needs x not NULL.
        return ie.AlwaysFalse() if has_null else _guarded(column, ie.NotIn(column, values))
    return _guarded(column, ie.In(column, values)) if values else ie.AlwaysFalse()


def _guarded(column: str, predicate: Any) -> Any:
    ie = _ops()
    return ie.And(ie.NotNull(column), predicate)


def _column(node: _Node) -> str:
    if not isinstance(node, _Col):
        raise UntranslatableFilter("an expression where a column is expected")
    return node.name


def _literal(node: _Node) -> Any:
    if not isinstance(node, _Lit) or node.kind == "null":
        raise UntranslatableFilter("an expression where a literal is expected")
    value = node.value
    if node.kind in ("date", "timestamp", "timestamptz"):
        return value.isoformat()  # type: ignore[union-attr]
    return value
