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

from collections.abc import Mapping, Sequence
from typing import Any

import narwhals as nw
import polars as pl
from sqlglot import exp

from metaxy.errors import FilterParseError
from metaxy.models._filter_ast import (
    _Cmp,
    _Col,
    _columns,
    _Lit,
    _Logic,
    _Node,
    _rename,
)
from metaxy.models._filter_eval import _NARWHALS, _POLARS, _compile
from metaxy.models._filter_parse import HINT, _parse
from metaxy.models._filter_sql import _render_sql, _sql

__all__ = ["FilterExpression", "coerce_filters", "parse_filter_string"]

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
