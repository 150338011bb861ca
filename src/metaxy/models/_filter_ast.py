"""The filter AST: small immutable nodes a parsed filter is made of, and the walks over them
(columns, renames, merging OR-ed equalities). Every target is compiled from these nodes alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

# --- internal AST ----------------------------------------------------------------------------

LiteralKind: TypeAlias = Literal["null", "bool", "int", "float", "str", "date", "timestamp", "timestamptz"]
LiteralValue: TypeAlias = bool | int | float | str | dt.date | dt.datetime | None
CompareOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]
ArithOp: TypeAlias = Literal["+", "-", "*"]


@dataclass(frozen=True)
class _Col:
    name: str


@dataclass(frozen=True)
class _Lit:
    # ``kind`` keeps ``1``, ``1.0`` and ``TRUE`` distinct under ``==`` / ``hash``.
    kind: LiteralKind
    value: LiteralValue


@dataclass(frozen=True)
class _Neg:
    operand: _Node


@dataclass(frozen=True)
class _Arith:
    op: ArithOp
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Cmp:
    op: CompareOp
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _IsNull:
    operand: _Node
    negated: bool = False


@dataclass(frozen=True)
class _In:
    operand: _Node
    values: tuple[_Lit, ...]
    negated: bool = False


@dataclass(frozen=True)
class _Between:
    operand: _Node
    low: _Node
    high: _Node
    negated: bool = False


@dataclass(frozen=True)
class _Like:
    operand: _Node
    pattern: str
    case_insensitive: bool = False
    negated: bool = False


@dataclass(frozen=True)
class _Not:
    operand: _Node


@dataclass(frozen=True)
class _Logic:
    op: Literal["and", "or"]
    operands: tuple[_Node, ...]


_Node: TypeAlias = _Col | _Lit | _Neg | _Arith | _Cmp | _IsNull | _In | _Between | _Like | _Not | _Logic
_Negatable = (_IsNull, _In, _Between, _Like)

_NULL = _Lit("null", None)

# --- AST helpers ------------------------------------------------------------------------------


def _equality_values(node: _Node) -> tuple[str, tuple[_Lit, ...]] | None:
    """``col = literal`` (either side) or ``col IN (...)`` as (column, literals); None otherwise."""
    if isinstance(node, _Cmp) and node.op == "=":
        if isinstance(node.left, _Col) and isinstance(node.right, _Lit) and node.right.kind != "null":
            return node.left.name, (node.right,)
        if isinstance(node.right, _Col) and isinstance(node.left, _Lit) and node.left.kind != "null":
            return node.right.name, (node.left,)
    if isinstance(node, _In) and not node.negated and isinstance(node.operand, _Col):
        return node.operand.name, node.values
    return None


def _merge_equalities(op: Literal["and", "or"], operands: list[_Node]) -> _Node:
    """``a = 1 OR a = 2 OR a IN (3)`` as ``a IN (1, 2, 3)``: the same three-valued result, and a
    filter of thousands of OR-ed ids stays one flat node (linear to compile and to run)."""
    if op != "or" or len(operands) < 3:
        return _Logic(op, tuple(operands))
    merged: list[_Node] = []
    groups: dict[str, list[_Lit]] = {}
    first_at: dict[str, int] = {}
    for operand in operands:
        found = _equality_values(operand)
        if found is None:
            merged.append(operand)
            continue
        column, values = found
        if column not in groups:
            groups[column] = []
            first_at[column] = len(merged)
            merged.append(operand)  # placeholder, replaced below
        groups[column].extend(values)
    for column, found_values in groups.items():
        unique = tuple(dict.fromkeys(found_values))
        if len(unique) > 1:
            merged[first_at[column]] = _In(_Col(column), unique)
    return merged[0] if len(merged) == 1 else _Logic(op, tuple(merged))


def _children(node: _Node) -> tuple[_Node, ...]:
    if isinstance(node, _Col | _Lit):
        return ()
    if isinstance(node, _Neg | _Not | _IsNull | _Like):
        return (node.operand,)
    if isinstance(node, _Arith | _Cmp):
        return (node.left, node.right)
    if isinstance(node, _In):
        return (node.operand, *node.values)
    if isinstance(node, _Between):
        return (node.operand, node.low, node.high)
    return node.operands


def _columns(node: _Node) -> frozenset[str]:
    names: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, _Col):
            names.add(current.name)
        stack.extend(_children(current))
    return frozenset(names)


def _rename(node: _Node, mapping: Mapping[str, str]) -> _Node:
    if isinstance(node, _Col):
        return _Col(mapping.get(node.name, node.name))
    if isinstance(node, _Lit):
        return node
    if isinstance(node, _Neg | _Not | _IsNull | _In | _Like):
        return replace(node, operand=_rename(node.operand, mapping))
    if isinstance(node, _Arith | _Cmp):
        return replace(node, left=_rename(node.left, mapping), right=_rename(node.right, mapping))
    if isinstance(node, _Between):
        return replace(
            node,
            operand=_rename(node.operand, mapping),
            low=_rename(node.low, mapping),
            high=_rename(node.high, mapping),
        )
    return replace(node, operands=tuple(_rename(op, mapping) for op in node.operands))
