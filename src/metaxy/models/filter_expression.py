"""SQL ``WHERE``-fragment filters, parsed once and compiled to Polars, narwhals and SQL.

Users write filters as short SQL strings -- ``FeatureDep(filters=["age > 18"])``, the CLI's
``--filter "status = 'ok'"``, ``resolve_update(filters=...)``. A string is never pasted into
SQL: :meth:`FilterExpression.parse` parses it with sqlglot (DuckDB dialect), walks the tree
with a whitelist visitor into a small immutable internal AST, and every target -- a Polars
expression, a narwhals expression, or SQL text for a sqlglot dialect -- is compiled from that
AST alone. SQL output is rebuilt node by node with every identifier quoted, so no byte of
the user's text reaches a database verbatim.

Supported grammar
-----------------
* conditions: ``=``, ``!=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``; ``AND``, ``OR``, ``NOT``;
  parentheses; ``x [NOT] IN (literal, ...)``; ``x IS [NOT] NULL``; ``x = NULL`` /
  ``x != NULL`` / ``x <> NULL`` (read as ``IS NULL`` / ``IS NOT NULL``);
  ``x [NOT] BETWEEN lo AND hi``; ``x [NOT] LIKE 'pat'`` and ``x [NOT] ILIKE 'pat'`` with
  the ``%`` / ``_`` wildcards; a bare (boolean) column such as ``is_valid`` or
  ``NOT is_valid``; the literals ``TRUE`` / ``FALSE``.
* values: column references -- plain (``age``), quoted (``"My Col"``, ``"a""b"``) or
  dotted (``a.b`` names the single column ``"a.b"``); string, integer, float, ``TRUE`` /
  ``FALSE`` and ``NULL`` literals; unary minus; ``+``, ``-``, ``*`` arithmetic; typed
  literals ``DATE '2024-01-01'``, ``TIMESTAMP '2024-01-01 00:00:00'`` and
  ``TIMESTAMPTZ '2024-01-01 00:00:00+02:00'`` (also ``CAST('...' AS DATE)`` and
  ``'...'::DATE`` spellings).

Everything else is rejected with :class:`~metaxy.errors.FilterParseError` (a ``ValueError``)
whose message quotes the input, names the construct, and ends with ``Hint: ...``: empty
input, several statements, ``SELECT`` / subqueries, function calls, casts of anything but a
string literal, division and modulo, ``IS [NOT] DISTINCT FROM``, ``IS TRUE``, ``LIKE ...
ESCAPE``, ``SIMILAR TO``, ``GLOB``, placeholders, ``*``, aliases, and so on.

Decisions
---------
* **Identifiers are case-sensitive, exactly as typed**, quoted or not (Polars semantics);
  the SQL output quotes every identifier, so ``Age`` and ``age`` are different columns in
  every backend. Dotted names are joined with ``"."`` into one column name.
* **Comments** (``-- ...``, ``/* ... */``) are accepted and dropped: the expression left
  after the tokenizer removes them must pass the whitelist like any other, and comments
  never reach the generated SQL. A trailing ``;`` is ignored too (sqlglot yields a single
  statement); anything after it that forms a second statement is rejected.
* **NULL**: SQL three-valued logic is preserved in every target. Polars and narwhals use
  Kleene logic for ``&`` / ``|`` / ``~`` and drop null rows in ``filter`` exactly like a SQL
  ``WHERE``, so ``NOT (x = 1)`` and ``x != 1`` both exclude a null ``x`` everywhere.
  ``IN`` is compiled to an OR of equalities (plus a null literal when the list holds
  ``NULL``), matching SQL: ``3 NOT IN (1, NULL)`` is NULL, so the row is dropped. ``NULL``
  may only appear in ``= NULL`` / ``!= NULL`` / ``<> NULL`` and in ``IN`` lists; anywhere
  else (``x > NULL``, ``x + NULL``) it is rejected because the result is always NULL.
* **LIKE** has no escape character (DuckDB's default). Patterns containing a backslash are
  rejected, because PostgreSQL treats backslash as the default LIKE escape and would disagree.
  In Polars / narwhals, LIKE becomes an anchored regular expression (``%`` -> ``.*``,
  ``_`` -> ``.``, dot matches newline; ILIKE adds case-insensitivity).
* **Division and modulo are not supported**: integer division and division by zero differ
  between PostgreSQL, DuckDB and Polars. ``+``, ``-``, ``*`` follow each engine's overflow
  rules (Polars wraps, SQL engines raise).
* **Timestamps**: ``TIMESTAMP '...'`` must be naive (an offset is rejected -- use
  ``TIMESTAMPTZ``); ``TIMESTAMPTZ '...'`` without an offset is read as UTC, and is normalised
  to UTC and rendered with an explicit ``+00:00`` offset so the database session time zone
  never matters. Compare tz-aware columns with ``TIMESTAMPTZ`` (or ``DATE``) literals: Polars
  refuses to compare naive and aware datetimes.
* **Equality and hashing** of :class:`FilterExpression` use the parsed structure, not the
  text: ``parse("x=1") == parse("x = 1")``. :meth:`FilterExpression.to_sql` gives a
  canonical text. :meth:`FilterExpression.rename_columns` returns an expression whose
  ``source`` is that canonical text (DuckDB dialect) of the renamed tree.
* **Defence in depth**: :meth:`FilterExpression.to_sql` re-parses the SQL it generates in the
  target dialect and checks it is a single expression with the same structure; a mismatch
  (a dialect that transpiles a construct into something else) raises ``FilterParseError``
  instead of emitting SQL whose meaning is unverified.
* **Column-free filters** (``TRUE``, ``1 = 1``) compile to a bare literal in Polars (which
  broadcasts it in ``filter``); narwhals rejects a scalar in ``filter``, so
  :meth:`FilterExpression.to_narwhals` ANDs such a filter with a per-row ``TRUE`` built from
  ``nw.all()``.
* ``coerce_filters`` raises ``FilterParseError`` (a ``ValueError``) for items of an
  unsupported type too, so pydantic validators that call it report a validation error.
* **pydantic**: ``FilterExpression`` can be a pydantic field type: it validates from a string
  (or an instance) and serialises to its ``source`` string in JSON mode.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn, TypeAlias

import narwhals as nw
import polars as pl
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from metaxy.errors import FilterParseError

__all__ = ["FilterExpression", "coerce_filters", "parse_filter_string"]

HINT = (
    "Hint: filters are SQL WHERE fragments built from column names (quote special names as "
    '"My Col"; a.b names the column "a.b"), string / number / TRUE / FALSE / NULL literals, '
    "DATE '2024-01-01', TIMESTAMP '2024-01-01 00:00:00' and TIMESTAMPTZ '...' literals, "
    "the comparisons = != <> < <= > >=, AND / OR / NOT, parentheses, IN / NOT IN (literal "
    "list), IS [NOT] NULL, [NOT] BETWEEN .. AND .., [NOT] LIKE / ILIKE with % and _, "
    "and + - * arithmetic."
)

_INPUT_SHOWN_MAX = 200

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


# --- public API --------------------------------------------------------------------------------


class FilterExpression:
    """A parsed, validated SQL filter, compilable to Polars, narwhals and SQL.

    Instances are immutable, hashable and picklable. Two expressions are equal when they parse
    to the same structure, whatever their spelling.

    Args:
        source: The SQL ``WHERE`` fragment, e.g. ``"age > 18 AND status = 'ok'"``. Equivalent
            to :meth:`FilterExpression.parse`.

    Raises:
        FilterParseError: If ``source`` is not a single supported SQL condition.
    """

    __slots__ = ("_node", "_source")

    _node: _Node
    _source: str

    def __init__(self, source: str) -> None:
        object.__setattr__(self, "_node", _parse(source))
        object.__setattr__(self, "_source", source)

    @classmethod
    def parse(cls, sql: str) -> FilterExpression:
        """Parse and validate a SQL filter string.

        Args:
            sql: The SQL ``WHERE`` fragment, e.g. ``"age > 18"``.

        Returns:
            The parsed filter.

        Raises:
            FilterParseError: If ``sql`` is empty, malformed, holds several statements, or uses
                an unsupported construct (subqueries, function calls, ...).
        """
        return cls(sql)

    @classmethod
    def all_of(cls, filters: Sequence[FilterExpression]) -> FilterExpression:
        """The conjunction of ``filters`` (one filter is returned as it is).

        Raises:
            ValueError: ``filters`` is empty.
        """
        if not filters:
            raise ValueError("all_of() needs at least one filter. Hint: pass None for 'every row'.")
        if len(filters) == 1:
            return filters[0]
        operands: list[_Node] = []
        for f in filters:  # flat, as the parser builds it (nested ANDs would not read back the same)
            node = f._node
            operands.extend(node.operands if isinstance(node, _Logic) and node.op == "and" else (node,))
        flat = _Logic("and", tuple(operands))
        return cls._from_node(flat, _render_sql(flat, "duckdb"))

    @classmethod
    def equals(cls, column: str, value: str | int) -> FilterExpression:
        """``column = value`` for a string or integer literal (quoted safely, never pasted)."""
        lit = _Lit("str", value) if isinstance(value, str) else _Lit("int", int(value))
        node = _Cmp("=", _Col(column), lit)
        return cls._from_node(node, _render_sql(node, "duckdb"))

    @classmethod
    def _from_node(cls, node: _Node, source: str) -> FilterExpression:
        self = object.__new__(cls)
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "_source", source)
        return self

    @property
    def source(self) -> str:
        """The SQL text this expression was parsed from (canonical SQL after a rename)."""
        return self._source

    @property
    def columns(self) -> frozenset[str]:
        """Names of all columns the expression references."""
        return _columns(self._node)

    def to_polars(self) -> pl.Expr:
        """Compile to a Polars boolean expression, usable in ``DataFrame.filter``.

        Returns:
            A Polars expression with SQL three-valued semantics (nulls are dropped by ``filter``).
        """
        result: pl.Expr = _compile(self._node, _POLARS)
        return result

    def to_narwhals(self) -> nw.Expr:
        """Compile to a narwhals boolean expression, usable in ``nw.DataFrame.filter``.

        Returns:
            A narwhals expression with SQL three-valued semantics.
        """
        result: nw.Expr = _compile(self._node, _NARWHALS)
        if not self.columns:
            # narwhals refuses a bare scalar in ``filter``; AND it with a per-row TRUE.
            has_null = nw.any_horizontal(nw.all().is_null(), ignore_nulls=False)
            result = (has_null | ~has_null) & result
        return result

    def to_sql(self, dialect: str = "duckdb") -> str:
        """Render as SQL text for a sqlglot dialect, every identifier quoted.

        The text is rebuilt from the parsed structure; the user's original string is never
        reused. The output is canonical: equal expressions render identically.

        Args:
            dialect: A sqlglot dialect name; ``"duckdb"`` and ``"postgres"`` are tested.

        Returns:
            A SQL boolean expression suitable for a ``WHERE`` clause.

        Raises:
            FilterParseError: If the dialect cannot express the filter faithfully.
            ValueError: If ``dialect`` is not a known sqlglot dialect.
        """
        return _render_sql(self._node, dialect)

    def to_sqlglot(self, dialect: str = "duckdb") -> exp.Expression:
        """The filter as a sqlglot expression tree, for embedding in a larger statement.

        The tree is the one :meth:`to_sql` renders (every identifier quoted), checked the same
        way to read back unchanged in ``dialect``; each call returns a fresh tree.

        Args:
            dialect: The sqlglot dialect the enclosing statement is rendered in.

        Returns:
            A boolean expression for a ``WHERE`` clause.

        Raises:
            FilterParseError: If the dialect cannot express the filter faithfully.
            ValueError: If ``dialect`` is not a known sqlglot dialect.
        """
        _render_sql(self._node, dialect)  # cached: the defence-in-depth check, once per dialect
        return _sql(self._node)

    def rename_columns(self, mapping: Mapping[str, str]) -> FilterExpression:
        """Return a copy whose column references are renamed.

        Args:
            mapping: Old column name to new column name; unmapped columns stay as they are.

        Returns:
            The renamed expression (``self`` if no referenced column is renamed). Its
            ``source`` is the canonical DuckDB SQL of the renamed expression.
        """
        if not any(name in mapping and mapping[name] != name for name in self.columns):
            return self
        node = _rename(self._node, mapping)
        return FilterExpression._from_node(node, _render_sql(node, "duckdb"))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FilterExpression):
            return NotImplemented
        return self._node == other._node

    def __hash__(self) -> int:
        return hash((FilterExpression, self._node))

    def __repr__(self) -> str:
        return f"FilterExpression({self._source!r})"

    def __str__(self) -> str:
        return self._source

    def __reduce__(self) -> tuple[Any, ...]:
        return (FilterExpression._from_node, (self._node, self._source))

    @classmethod
    def __get_pydantic_core_schema__(cls, source_type: Any, handler: Any) -> Any:
        """Let pydantic models hold filters: accept a string or an instance, dump the source."""
        from pydantic_core import core_schema

        def validate(value: Any) -> FilterExpression:
            if isinstance(value, FilterExpression):
                return value
            if isinstance(value, str):
                return FilterExpression.parse(value)
            raise FilterParseError(
                f"Expected a SQL filter string or FilterExpression, got {type(value).__name__}. {HINT}"
            )

        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value.source, when_used="json"
            ),
        )


def parse_filter_string(sql: str) -> nw.Expr:
    """Parse a SQL filter string into a narwhals expression (published-Metaxy compatible).

    Args:
        sql: The SQL ``WHERE`` fragment, e.g. ``"age > 18"``.

    Returns:
        ``FilterExpression.parse(sql).to_narwhals()``.

    Raises:
        FilterParseError: If ``sql`` is not a single supported SQL condition.
    """
    return FilterExpression.parse(sql).to_narwhals()


def coerce_filters(value: Any) -> list[FilterExpression | nw.Expr | pl.Expr]:
    """Normalise user-supplied filters into a list.

    Args:
        value: ``None``, a SQL string, a :class:`FilterExpression`, a narwhals or Polars
            expression, or a list / tuple of those.

    Returns:
        A new list; strings are parsed into :class:`FilterExpression` instances, expressions
        are kept as they are.

    Raises:
        FilterParseError: If a string does not parse, or an item has an unsupported type.
    """
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) else [value]
    result: list[FilterExpression | nw.Expr | pl.Expr] = []
    for item in items:
        if isinstance(item, str):
            result.append(FilterExpression.parse(item))
        elif isinstance(item, FilterExpression | nw.Expr | pl.Expr):
            result.append(item)
        else:
            raise FilterParseError(
                f"Unsupported filter {item!r} of type {type(item).__name__}; expected a SQL string, "
                f"a FilterExpression, a narwhals expression or a Polars expression. {HINT}"
            )
    return result
