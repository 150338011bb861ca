"""Parsing a filter string with sqlglot: a whitelist walk of sqlglot's tree into the filter AST
(:mod:`metaxy.models._filter_ast`); anything outside the grammar is a ``FilterParseError``."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal, NoReturn

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from metaxy.errors import FilterParseError
from metaxy.models._filter_ast import (
    _NULL,
    ArithOp,
    CompareOp,
    _Arith,
    _Between,
    _Cmp,
    _Col,
    _In,
    _IsNull,
    _Like,
    _Lit,
    _merge_equalities,
    _Neg,
    _Negatable,
    _Node,
    _Not,
)

HINT = (
    "Hint: filters are SQL WHERE fragments built from column names (quote special names as "
    '"My Col"; a.b names the column "a.b"), string / number / TRUE / FALSE / NULL literals, '
    "DATE '2024-01-01', TIMESTAMP '2024-01-01 00:00:00' and TIMESTAMPTZ '...' literals, "
    "the comparisons = != <> < <= > >=, AND / OR / NOT, parentheses, IN / NOT IN (literal "
    "list), IS [NOT] NULL, [NOT] BETWEEN .. AND .., [NOT] LIKE / ILIKE with % and _, "
    "and + - * arithmetic."
)

_INPUT_SHOWN_MAX = 200

# --- parsing ---------------------------------------------------------------------------------

_COMPARISONS: dict[type[exp.Expression], CompareOp] = {
    exp.EQ: "=",
    exp.NEQ: "!=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
_ARITHMETIC: dict[type[exp.Expression], ArithOp] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*"}
_CONDITION_TYPES: tuple[type[exp.Expression], ...] = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    *_COMPARISONS,
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)
_NAIVE_TIMESTAMP_TYPES = {
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.DATETIME,
}
_TIMESTAMP_TYPES = {*_NAIVE_TIMESTAMP_TYPES, exp.DataType.Type.TIMESTAMPTZ}


def _shown(source: str) -> str:
    if len(source) > _INPUT_SHOWN_MAX:
        source = source[:_INPUT_SHOWN_MAX] + "..."
    return repr(source)


def _error(source: str, problem: str) -> FilterParseError:
    return FilterParseError(f"Invalid filter expression {_shown(source)}: {problem}. {HINT}")


def _snippet(node: exp.Expression) -> str:
    try:
        text = node.sql(dialect="duckdb")
    except Exception:  # pragma: no cover - sqlglot cannot print some partial trees
        text = type(node).__name__
    if len(text) > 60:
        text = text[:60] + "..."
    return text


class _Visitor:
    """Whitelist walk of a sqlglot tree into the internal AST."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, problem: str) -> NoReturn:
        raise _error(self.source, problem)

    def unsupported(self, node: exp.Expression) -> NoReturn:
        self.fail(_describe_unsupported(node))

    def check_args(self, node: exp.Expression, allowed: Iterable[str]) -> None:
        allowed_set = set(allowed)
        for key, value in node.args.items():
            if key in allowed_set or value is None or value is False or value == [] or value == "":
                continue
            self.fail(f"unsupported option {key!r} in {_snippet(node)!r}")

    # --- conditions ---------------------------------------------------------------------

    def condition(self, node: exp.Expression) -> _Node:
        node = self.unparen(node)
        if isinstance(node, exp.And | exp.Or):
            op: Literal["and", "or"] = "and" if isinstance(node, exp.And) else "or"
            kind = type(node)
            operands: list[_Node] = []
            stack: list[exp.Expression] = [node]
            while stack:
                current = self.unparen(stack.pop())
                if type(current) is kind:
                    self.check_args(current, ("this", "expression"))
                    stack.append(current.expression)
                    stack.append(current.this)
                else:
                    operands.append(self.condition(current))
            return _merge_equalities(op, operands)
        if isinstance(node, exp.Not):
            self.check_args(node, ("this",))
            inner = self.condition(node.this)
            if isinstance(inner, _Negatable):
                return replace(inner, negated=not inner.negated)
            return _Not(inner)
        if type(node) in _COMPARISONS:
            self.check_args(node, ("this", "expression"))
            op_sym = _COMPARISONS[type(node)]
            left_null = isinstance(self.unparen(node.this), exp.Null)
            right_null = isinstance(self.unparen(node.expression), exp.Null)
            if left_null or right_null:
                if op_sym not in ("=", "!="):
                    self.fail(f"comparison {_snippet(node)!r} with NULL is always NULL")
                other = node.expression if left_null else node.this
                operand = _NULL if left_null and right_null else self.value(other)
                return _IsNull(operand, negated=op_sym == "!=")
            return _Cmp(op_sym, self.value(node.this), self.value(node.expression))
        if isinstance(node, exp.Is):
            self.check_args(node, ("this", "expression", "negate"))
            if not isinstance(self.unparen(node.expression), exp.Null):
                self.fail(f"{_snippet(node)!r}: only IS NULL / IS NOT NULL are supported")
            subject = self.unparen(node.this)
            operand = _NULL if isinstance(subject, exp.Null) else self.value(subject)
            return _IsNull(operand, negated=bool(node.args.get("negate")))
        if isinstance(node, exp.In):
            query = node.args.get("query")
            if query is not None:
                self.unsupported(query)
            self.check_args(node, ("this", "expressions"))
            items = node.expressions
            if not items:
                self.fail("IN needs at least one value")
            values = tuple(self.in_item(item) for item in items)
            return _In(self.value(node.this), values)
        if isinstance(node, exp.Between):
            if node.args.get("symmetric"):
                self.fail("BETWEEN SYMMETRIC is not supported; order the bounds or use OR")
            self.check_args(node, ("this", "low", "high"))
            low, high = self.value(node.args["low"]), self.value(node.args["high"])
            return _Between(self.value(node.this), low, high)
        if isinstance(node, exp.Like | exp.ILike):
            self.check_args(node, ("this", "expression", "negate"))
            pattern = self.literal(node.expression)
            if pattern is None or pattern.kind != "str":
                self.fail(f"the pattern of {_snippet(node)!r} must be a string literal")
            assert isinstance(pattern.value, str)
            if "\\" in pattern.value:
                self.fail(
                    f"LIKE pattern {pattern.value!r} contains a backslash, whose escape meaning "
                    "differs between databases"
                )
            return _Like(
                self.value(node.this),
                pattern.value,
                case_insensitive=isinstance(node, exp.ILike),
                negated=bool(node.args.get("negate")),
            )
        if isinstance(node, exp.Column | exp.Dot):
            return _Col(self.column_name(node))
        if isinstance(node, exp.Boolean):
            return _Lit("bool", bool(node.this))
        if isinstance(node, exp.Null):
            self.fail("NULL on its own is not a condition")
        if isinstance(node, exp.Literal | exp.Cast | exp.Neg | exp.RawString) and self.literal(node) is not None:
            self.fail(f"the literal {_snippet(node)} on its own is not a condition")
        if type(node) in _ARITHMETIC or isinstance(node, exp.Neg):
            self.fail(f"the arithmetic {_snippet(node)!r} is not a condition; compare it with a value")
        self.unsupported(node)

    def in_item(self, node: exp.Expression) -> _Lit:
        node = self.unparen(node)
        if isinstance(node, exp.Null):
            return _NULL
        lit = self.literal(node)
        if lit is None:
            if isinstance(node, exp.Query | exp.Subquery):
                self.unsupported(node)
            self.fail(f"IN lists may only hold literals, found {_snippet(node)!r}")
        return lit

    # --- values -------------------------------------------------------------------------

    def value(self, node: exp.Expression) -> _Node:
        node = self.unparen(node)
        if isinstance(node, exp.Column | exp.Dot):
            return _Col(self.column_name(node))
        if isinstance(node, exp.Null):
            parent = node.parent
            context = parent if isinstance(parent, exp.Expression) else node
            self.fail(
                f"NULL cannot be used here ({_snippet(context)!r}); use IS [NOT] NULL, "
                "= NULL / != NULL, or a NULL inside an IN list"
            )
        if type(node) in _ARITHMETIC:
            self.check_args(node, ("this", "expression"))
            left, right = self.value(node.this), self.value(node.expression)
            for side in (left, right):
                if isinstance(side, _Lit) and side.kind not in ("int", "float"):
                    self.fail(f"arithmetic {_snippet(node)!r} needs numeric literals")
            return _Arith(_ARITHMETIC[type(node)], left, right)
        if isinstance(node, exp.Neg):
            self.check_args(node, ("this",))
            inner = self.value(node.this)
            if isinstance(inner, _Lit):
                if inner.kind == "int":
                    assert isinstance(inner.value, int)
                    return _Lit("int", -inner.value)
                if inner.kind == "float":
                    assert isinstance(inner.value, float)
                    return _Lit("float", -inner.value)
                self.fail(f"unary minus needs a number, found {_snippet(node)!r}")
            return _Neg(inner)
        lit = self.literal(node)
        if lit is not None:
            return lit
        if isinstance(node, _CONDITION_TYPES):
            self.fail(
                f"the condition {_snippet(node)!r} cannot be used as a value; compare columns, literals or arithmetic"
            )
        self.unsupported(node)

    def literal(self, node: exp.Expression) -> _Lit | None:
        """The literal ``node`` spells, ``None`` if it is not a literal (``NULL`` excluded)."""
        node = self.unparen(node)
        if isinstance(node, exp.Literal):
            self.check_args(node, ("this", "is_string"))
            text = node.this
            if not isinstance(text, str):  # pragma: no cover - sqlglot always stores text
                self.unsupported(node)
            if node.is_string:
                return _Lit("str", text)
            return self.number(text)
        if isinstance(node, exp.RawString):
            self.check_args(node, ("this",))
            return _Lit("str", str(node.this))
        if isinstance(node, exp.Boolean):
            return _Lit("bool", bool(node.this))
        if isinstance(node, exp.Neg):
            inner = self.literal(node.this)
            if inner is None:
                return None
            if inner.kind not in ("int", "float"):
                self.fail(f"unary minus needs a number, found {_snippet(node)!r}")
            assert isinstance(inner.value, int | float)
            return _Lit(inner.kind, -inner.value)
        if isinstance(node, exp.Cast) and type(node) is exp.Cast:
            return self.typed_literal(node)
        return None

    def number(self, text: str) -> _Lit:
        try:
            return _Lit("int", int(text))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            self.fail(f"cannot read the number {text!r}")
        if not math.isfinite(number):
            self.fail(f"the number {text!r} is out of range")
        return _Lit("float", number)

    def typed_literal(self, node: exp.Cast) -> _Lit:
        self.check_args(node, ("this", "to"))
        target = node.args["to"]
        inner = self.unparen(node.this)
        if not isinstance(target, exp.DataType) or not isinstance(inner, exp.Literal) or not inner.is_string:
            self.fail(
                f"casts are not supported ({_snippet(node)!r}); only DATE '...', TIMESTAMP '...' "
                "and TIMESTAMPTZ '...' literals"
            )
        self.check_args(target, ("this",))
        text = str(inner.this).strip()
        type_ = target.this
        if type_ != exp.DataType.Type.DATE and type_ not in _TIMESTAMP_TYPES:
            self.fail(f"typed literal {_snippet(node)!r} is not supported; only DATE, TIMESTAMP and TIMESTAMPTZ")
        if type_ == exp.DataType.Type.DATE and not _DATE_RE.fullmatch(text):
            self.fail(f"cannot read {text!r} as a DATE; write DATE 'YYYY-MM-DD'")
        if type_ != exp.DataType.Type.DATE and not _TIMESTAMP_RE.fullmatch(text):
            self.fail(f"cannot read {text!r} as a timestamp; write 'YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]'")
        try:
            if type_ == exp.DataType.Type.DATE:
                return _Lit("date", dt.date.fromisoformat(text))
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise _error(self.source, f"cannot read {_snippet(node)!r} ({exc})") from exc
        if type_ in _NAIVE_TIMESTAMP_TYPES:
            if stamp.tzinfo is not None:
                self.fail(f"TIMESTAMP {text!r} carries a time zone offset; write TIMESTAMPTZ '{text}' instead")
            return _Lit("timestamp", stamp)
        if stamp.tzinfo is None:  # TIMESTAMPTZ without an offset: UTC
            stamp = stamp.replace(tzinfo=dt.UTC)
        return _Lit("timestamptz", stamp.astimezone(dt.UTC))

    # --- names --------------------------------------------------------------------------

    def column_name(self, node: exp.Expression) -> str:
        parts: list[str] = []
        if isinstance(node, exp.Dot):
            self.check_args(node, ("this", "expression"))
            parts.append(self.column_name(node.this))
            parts.append(self.identifier(node.expression, node))
        else:
            self.check_args(node, ("this", "table", "db", "catalog"))
            if isinstance(node.this, exp.Star):
                self.fail("'*' is not a column")
            for key in ("catalog", "db", "table", "this"):
                part = node.args.get(key)
                if part is not None:
                    parts.append(self.identifier(part, node))
        name = ".".join(parts)
        if not name:
            self.fail("empty column name")
        return name

    def identifier(self, node: Any, owner: exp.Expression) -> str:
        if not isinstance(node, exp.Identifier):
            self.fail(f"unsupported column reference {_snippet(owner)!r}")
        self.check_args(node, ("this", "quoted"))
        name = str(node.this)
        if not name:
            self.fail("empty column name")
        return name

    @staticmethod
    def unparen(node: exp.Expression) -> exp.Expression:
        while isinstance(node, exp.Paren) and type(node) is exp.Paren:
            node = node.this
        return node


def _describe_unsupported(node: exp.Expression) -> str:
    snippet = _snippet(node)
    if isinstance(node, exp.Query | exp.Subquery):
        return f"subqueries and SELECT statements are not supported (found {snippet!r})"
    if isinstance(node, exp.Cast):
        return f"casts are not supported (found {snippet!r})"
    if isinstance(node, exp.Func):
        return f"function calls are not supported (found {snippet!r})"
    if isinstance(node, exp.Div | exp.IntDiv | exp.Mod):
        return f"division and modulo are not supported (found {snippet!r})"
    if isinstance(node, exp.NullSafeEQ | exp.NullSafeNEQ):
        return f"IS [NOT] DISTINCT FROM / <=> is not supported (found {snippet!r}); use IS NULL with OR"
    if isinstance(node, exp.Placeholder | exp.Parameter):
        return f"parameter placeholders are not supported (found {snippet!r})"
    if isinstance(node, exp.Star):
        return "'*' is not supported"
    if isinstance(node, exp.Alias):
        return f"aliases are not supported (found {snippet!r}; is an operator missing?)"
    if isinstance(node, exp.Escape):
        return f"LIKE ... ESCAPE is not supported (found {snippet!r})"
    if isinstance(node, exp.DDL | exp.DML | exp.Command | exp.Drop):
        return f"SQL statements are not supported (found {snippet!r})"
    return f"the construct {type(node).__name__} is not supported (found {snippet!r})"


def _parse(sql: str, dialect: str = "duckdb") -> _Node:
    if not isinstance(sql, str):
        raise FilterParseError(f"A filter expression must be a string, got {type(sql).__name__}. {HINT}")
    if not sql.strip():
        raise _error(sql, "the filter is empty")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    except SqlglotError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _error(sql, f"it is not valid SQL ({first_line})") from exc
    except RecursionError as exc:
        raise _error(sql, "it is nested too deeply") from exc
    if not statements:
        raise _error(sql, "the filter is empty (only comments or ';')")
    if len(statements) > 1:
        raise _error(sql, f"it holds {len(statements)} statements; a filter is a single expression")
    statement = statements[0]
    if not isinstance(statement, exp.Expression):  # pragma: no cover - sqlglot always yields Expressions
        raise _error(sql, f"unexpected parse result {type(statement).__name__}")
    try:
        return _Visitor(sql).condition(statement)
    except RecursionError as exc:
        raise _error(sql, "it is nested too deeply") from exc
