"""SQL dialects: the few pieces of SQL that differ between databases, as sqlglot expressions.

A statement is composed once (``metaxy.versioning.sql_executor`` for the resolve,
``metaxy.sql.statements`` for reads, deletes and DDL) and rendered per dialect by sqlglot's
generator. A :class:`SqlDialect` supplies only what sqlglot cannot translate by itself:

* latest-row selection (:meth:`SqlDialect.first_per_group`),
* hashing to lowercase hex (:meth:`SqlDialect.hash`),
* building and reading the ``*_by_field`` columns (:meth:`struct_pack`, :meth:`map_pack`,
  :meth:`by_field`) and an ordered string aggregation (:meth:`string_agg`),
* row identity (:attr:`SqlDialect.row_identity`),
* column types for DDL (:meth:`SqlDialect.column_type`),
* statement settings (:meth:`SqlDialect.finish`).

See docs/sql.md for what each dialect does and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from sqlglot import exp

from metaxy.errors import HashAlgorithmNotSupportedError, MetadataSchemaError
from metaxy.versioning.hashing import HashAlgorithm

from ._build import alias, col, func, ident, lit, or_all, select, subquery

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ClickHouseDialect", "DuckDBDialect", "PostgresDialect", "SqlDialect", "dialect_for"]

#: The row-number column of the window-in-a-subquery latest-row selection.
_ROW_NUMBER = "__metaxy_rn"
#: The column carrying the ``keep`` condition of a latest-row selection.
_KEEP = "__metaxy_keep"


class SqlDialect:
    """The dialect hooks. Subclasses set :attr:`name` (a sqlglot dialect) and override what differs.

    The defaults are ANSI SQL with window functions (latest row through ``row_number()`` in a
    subquery, ``string_agg(... ORDER BY ...)``), which PostgreSQL and DuckDB accept.
    """

    #: The sqlglot dialect the statements are rendered in.
    name: ClassVar[str] = ""
    #: Algorithms the engine hashes natively (lowercase hex, or the decimal integer for xxhash).
    hash_algorithms: ClassVar[frozenset[HashAlgorithm]] = frozenset()
    #: A pseudo-column naming a physical row (``rowid``, ``ctid``); None when the engine has none.
    row_identity: ClassVar[str | None] = None
    #: Fetch orphaned rows back by their row identity one by one (``LEFT JOIN LATERAL``: a direct
    #: tuple lookup per orphan) instead of joining the whole stored table on it (a hash of every row).
    row_lookup_lateral: ClassVar[bool] = False

    # --- rendering -----------------------------------------------------------------------------
    def render(self, statement: exp.Expression) -> str:
        """The statement's SQL text in this dialect."""
        return self.finish(statement).sql(dialect=self.name)

    def identifier(self, name: str) -> str:
        """``name`` as a quoted identifier in this dialect (for engine APIs taking a name as text)."""
        return ident(name).sql(dialect=self.name)

    def finish(self, statement: exp.Expression) -> exp.Expression:
        """Statement-level settings (ClickHouse's SQL NULL semantics for joins); default: none."""
        return statement

    # --- latest row ----------------------------------------------------------------------------
    def first_per_group(
        self,
        query: exp.Select,
        partition: Sequence[str],
        order: Sequence[exp.Ordered],
        keep: exp.Expression | None = None,
    ) -> exp.Select:
        """Keep the first row of each ``partition`` group of ``query``'s rows in ``order``, then
        only those where ``keep`` (a condition on the source's columns) holds.

        ``query`` selects named columns from one source; the result has the same columns.
        """
        names = [_output_name(e) for e in query.expressions]
        if keep is not None:
            query.append("expressions", alias(keep, _KEEP))
        ranked = self._first(query, partition, order, names if keep is None else [*names, _KEEP])
        if keep is None:
            return ranked
        return select([col(n) for n in names], subquery(ranked, "__metaxy_first"), where=col(_KEEP))

    def _first(
        self, query: exp.Select, partition: Sequence[str], order: Sequence[exp.Ordered], names: Sequence[str]
    ) -> exp.Select:
        """The first row per group (no ``keep``). Default: ``row_number()`` in a subquery."""
        query.append("expressions", alias(_row_number(partition, order), _ROW_NUMBER))
        inner = subquery(query, "__metaxy_ranked")
        return select([col(n) for n in names], inner, where=exp.EQ(this=col(_ROW_NUMBER), expression=lit(1)))

    # --- hashing -------------------------------------------------------------------------------
    def hash(self, text: exp.Expression, algorithm: HashAlgorithm, length: int) -> exp.Expression:
        """The hash of a string expression as metaxy stores it: lowercase hex (md5 / sha256) or
        the unsigned decimal (xxhash), cut to ``length`` characters.

        Raises:
            HashAlgorithmNotSupportedError: the engine cannot compute ``algorithm``.
        """
        if algorithm not in self.hash_algorithms:
            raise HashAlgorithmNotSupportedError(
                f"The {self.name} SQL engine cannot compute '{algorithm.value}'. "
                f"Hint: use one of {sorted(a.value for a in self.hash_algorithms)}."
            )
        return exp.Substring(this=self._digest(text, algorithm), start=lit(1), length=lit(length))

    def _digest(self, text: exp.Expression, algorithm: HashAlgorithm) -> exp.Expression:
        return func(algorithm.value, text)

    # --- *_by_field columns --------------------------------------------------------------------
    def struct_pack(self, items: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        """A struct of string values keyed by field (the Struct representation)."""
        return exp.Struct(expressions=[exp.PropertyEQ(this=ident(k), expression=v) for k, v in items])

    def map_pack(self, items: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        """A string → string map keyed by field (the Map representation)."""
        return exp.ToMap(this=exp.Struct(expressions=[exp.PropertyEQ(this=lit(k), expression=v) for k, v in items]))

    def by_field(self, value: exp.Expression, key: str, *, is_map: bool) -> exp.Expression:
        """One field's entry of a ``*_by_field`` column, stored as a Map (``is_map``) or a Struct."""
        return exp.Bracket(this=value, expressions=[lit(key)])

    def string_agg(self, value: exp.Expression, separator: str, order: Sequence[exp.Expression]) -> exp.Expression:
        """``value`` of a group joined by ``separator`` in ``order`` (NULLs skipped; NULL when empty)."""
        return exp.GroupConcat(
            this=exp.Order(this=value, expressions=[exp.Ordered(this=o, nulls_first=False) for o in order]),
            separator=lit(separator),
        )

    def text(self, value: exp.Expression) -> exp.Expression:
        """``value`` cast to the engine's string type."""
        return exp.Cast(this=value, to=exp.DataType.build("TEXT"))

    def joined(self, parts: Sequence[exp.Expression], required: Sequence[exp.Expression]) -> exp.Expression:
        """``parts`` joined by ``|``, NULL when one of ``required`` (parts that may be NULL) is;
        every other part is never NULL. Default: ``CASE WHEN r1 IS NULL OR ... THEN NULL ELSE
        concat_ws('|', ...) END`` (``concat_ws`` skips NULLs in DuckDB and PostgreSQL)."""
        text: exp.Expression = exp.ConcatWs(coalesce=True, expressions=[lit("|"), *parts])
        if not required:
            return text
        cond = or_all(exp.Is(this=v, expression=exp.Null()) for v in required)
        return exp.Case(ifs=[exp.If(this=cond, true=exp.Null())], default=text)

    # --- row identity --------------------------------------------------------------------------
    def row_id(self) -> exp.Expression | None:
        """The row-identity pseudo-column, or None (then statements carry whole rows instead)."""
        return exp.Column(this=exp.Identifier(this=self.row_identity)) if self.row_identity else None

    def pack_row(self, values: Sequence[exp.Expression]) -> exp.Expression | None:
        """One value holding ``values`` (a positional tuple) for a statement to carry whole rows in
        one column, or None when the dialect carries them column by column."""
        return None

    def row_field(self, packed: exp.Expression, i: int) -> exp.Expression:
        """Value ``i`` (from 0) of a :meth:`pack_row` value."""
        raise NotImplementedError(f"{self.name} does not pack rows")

    # --- types ---------------------------------------------------------------------------------
    def column_type(self, arrow: pa.DataType) -> exp.DataType:
        """The column type DDL uses for an Arrow type.

        Raises:
            MetadataSchemaError: the type has no counterpart in this dialect.
        """
        return exp.DataType.build(self._type_name(arrow), dialect=self.name)

    def _type_name(self, arrow: pa.DataType) -> str:
        import pyarrow as pa

        t = pa.types
        if t.is_string(arrow) or t.is_large_string(arrow) or t.is_string_view(arrow):
            return "TEXT"
        if t.is_boolean(arrow):
            return "BOOLEAN"
        for check, name in (
            (t.is_int8, "TINYINT"),
            (t.is_int16, "SMALLINT"),
            (t.is_int32, "INT"),
            (t.is_int64, "BIGINT"),
            (t.is_uint8, "UTINYINT"),
            (t.is_uint16, "USMALLINT"),
            (t.is_uint32, "UINT"),
            (t.is_uint64, "UBIGINT"),
            (t.is_float32, "FLOAT"),
            (t.is_float64, "DOUBLE"),
            (t.is_date32, "DATE"),
            (t.is_binary, "BLOB"),
            (t.is_large_binary, "BLOB"),
        ):
            if check(arrow):
                return name
        if t.is_timestamp(arrow):
            return "TIMESTAMPTZ" if arrow.tz else "TIMESTAMP"
        if t.is_struct(arrow):
            fields = ", ".join(f"{_quote(f.name)} {self._type_name(f.type)}" for f in arrow)
            return f"STRUCT({fields})"
        if t.is_map(arrow):
            return f"MAP({self._type_name(arrow.key_type)}, {self._type_name(arrow.item_type)})"
        if t.is_list(arrow) or t.is_large_list(arrow):
            return f"{self._type_name(arrow.value_type)}[]"
        raise MetadataSchemaError(
            f"Column type {arrow} has no {self.name or 'SQL'} counterpart. "
            "Hint: cast the column to a string, number, boolean, date, timestamp, struct, map or list type."
        )


def _row_number(partition: Sequence[str], order: Sequence[exp.Ordered]) -> exp.Window:
    return exp.Window(
        this=exp.RowNumber(), partition_by=[col(p) for p in partition], order=exp.Order(expressions=list(order))
    )


def _named(item: exp.Expression) -> exp.Expression:
    """A qualified column projection aliased to its own name (others unchanged)."""
    if isinstance(item, exp.Column) and item.args.get("table") is not None and item.name:
        return exp.Alias(this=item, alias=exp.Identifier(this=item.name, quoted=True))
    return item


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _hashes(e: exp.Expression) -> bool:
    """Whether ``e`` computes a digest (the expensive part of a resolve statement's rows)."""
    return any(f.name.lower() in _DIGESTS for f in e.find_all(exp.Anonymous))


_DIGESTS = frozenset({"md5", "sha256"})


def _output_name(e: exp.Expression) -> str:
    name = e.alias_or_name
    if not name:
        raise ValueError(f"first_per_group needs named output columns, got {e.sql()!r}")
    return name


class DuckDBDialect(SqlDialect):
    """DuckDB: ``QUALIFY``, ``md5`` / ``sha256``, structs and maps, ``rowid``."""

    name = "duckdb"
    hash_algorithms = frozenset({HashAlgorithm.MD5, HashAlgorithm.SHA256})
    row_identity = "rowid"

    def first_per_group(
        self,
        query: exp.Select,
        partition: Sequence[str],
        order: Sequence[exp.Ordered],
        keep: exp.Expression | None = None,
    ) -> exp.Select:
        # QUALIFY filters after the window and may read columns the output drops. A window with
        # the full order is ~3x faster in DuckDB than arg_max over a row key.
        first: exp.Expression = exp.EQ(this=_row_number(partition, order), expression=lit(1))
        if keep is not None:
            first = exp.And(this=first, expression=keep)
        query.set("qualify", exp.Qualify(this=first))
        return query


class PostgresDialect(SqlDialect):
    """PostgreSQL: ``DISTINCT ON``, ``md5()`` / ``sha256`` over UTF-8 bytes, jsonb for the
    ``*_by_field`` columns (both representations), ``ctid``."""

    name = "postgres"
    hash_algorithms = frozenset({HashAlgorithm.MD5, HashAlgorithm.SHA256})
    row_identity = "ctid"
    row_lookup_lateral = True  # a TID scan per orphan; the hash join read the stored table twice

    def finish(self, statement: exp.Expression) -> exp.Expression:
        # The planner pulls a derived table up into its parent, which then evaluates each of the
        # table's expressions once per reference: a field hash referenced by the provenance struct,
        # the provenance hash and their data-version copies was computed four times per row (2.3x
        # the statement's time). ``OFFSET 0`` keeps a hashing derived table a table of its own.
        for sub in statement.find_all(exp.Subquery):
            inner = sub.this
            if not isinstance(inner, exp.Select) or inner.args.get("offset") or inner.args.get("limit"):
                continue
            if any(_hashes(e) for e in inner.expressions):
                inner.set("offset", exp.Offset(expression=lit(0)))
        return statement

    def _first(
        self, query: exp.Select, partition: Sequence[str], order: Sequence[exp.Ordered], names: Sequence[str]
    ) -> exp.Select:
        # DISTINCT ON keeps the first row of each group in ORDER BY order; the group leads the order.
        query.set("distinct", exp.Distinct(on=exp.Tuple(expressions=[col(p) for p in partition])))
        query.set("order", exp.Order(expressions=[*(exp.Ordered(this=col(p)) for p in partition), *order]))
        return query

    def _digest(self, text: exp.Expression, algorithm: HashAlgorithm) -> exp.Expression:
        if algorithm is HashAlgorithm.MD5:
            return func("md5", text)
        utf8 = func("convert_to", text, lit("UTF8"))
        return func("encode", func("sha256", utf8), lit("hex"))

    def struct_pack(self, items: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        args: list[exp.Expression] = []
        for k, v in items:
            args += [lit(k), v]
        return func("jsonb_build_object", *args)

    map_pack = struct_pack

    def by_field(self, value: exp.Expression, key: str, *, is_map: bool) -> exp.Expression:
        return exp.JSONExtractScalar(this=value, expression=lit(key))

    def _type_name(self, arrow: pa.DataType) -> str:
        import pyarrow as pa

        if pa.types.is_struct(arrow) or pa.types.is_map(arrow):
            return "JSONB"
        if pa.types.is_unsigned_integer(arrow):
            return {8: "SMALLINT", 16: "INT", 32: "BIGINT"}.get(arrow.bit_width, "DECIMAL(20, 0)")
        if pa.types.is_int8(arrow):
            return "SMALLINT"
        if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
            return "BYTEA"
        return super()._type_name(arrow)


class ClickHouseDialect(SqlDialect):
    """ClickHouse: ``LIMIT 1 BY``, ``lower(hex(MD5(x)))`` and built-in xxHash, named tuples and
    maps, a row's number in its table (``_part_starting_offset + _part_offset``, over one snapshot
    of the table's parts per statement) as its identity; ``join_use_nulls = 1`` and
    ``prefer_column_name_to_alias = 1`` so outer joins fill NULLs and names resolve as in SQL."""

    name = "clickhouse"
    #: Set on every statement. SQL semantics: outer joins fill NULLs, and a name means the source's
    #: column before a select-list alias of that name (by default ClickHouse reads
    #: `SELECT b AS a, a AS c` as c = b, and `WHERE a` as the alias); every read of a table in one
    #: statement sees one snapshot of its parts (the row identity's stability). A server must know
    #: them all (ClickHouse 25.x or later): the store checks when it connects.
    statement_settings: ClassVar[dict[str, int]] = {
        "join_use_nulls": 1,
        "prefer_column_name_to_alias": 1,
        "enable_shared_storage_snapshot_in_query": 1,
    }
    hash_algorithms = frozenset(
        {HashAlgorithm.MD5, HashAlgorithm.SHA256, HashAlgorithm.XXHASH64, HashAlgorithm.XXHASH32}
    )
    row_identity = "_part_offset"

    def row_id(self) -> exp.Expression:
        # A MergeTree row's number in the table: its part's first row number plus its offset in the
        # part, one UInt64 (a (_part, _part_offset) tuple costs twice as much to sort and join). It
        # is stable within one statement, whose reads of a table share one snapshot of its parts
        # (enable_shared_storage_snapshot_in_query, set by finish()).
        start = exp.Column(this=exp.Identifier(this="_part_starting_offset"))
        return exp.Add(this=start, expression=exp.Column(this=exp.Identifier(this=self.row_identity)))

    def finish(self, statement: exp.Expression) -> exp.Expression:
        # ClickHouse names an unaliased qualified projection `t.col` (not `col`), so an outer query
        # could not refer to it by its name: alias every qualified column projection to its name.
        for query in list(statement.find_all(exp.Select)):
            items = query.expressions
            if any(isinstance(e, exp.Column) and e.args.get("table") is not None for e in items):
                query.set("expressions", [_named(e) for e in items])
        if isinstance(statement, exp.Select) and not statement.args.get("settings"):
            statement.set(
                "settings",
                [
                    exp.EQ(this=exp.Column(this=exp.Identifier(this=k)), expression=lit(v))
                    for k, v in self.statement_settings.items()
                ],
            )
        return statement

    def _first(
        self, query: exp.Select, partition: Sequence[str], order: Sequence[exp.Ordered], names: Sequence[str]
    ) -> exp.Select:
        # Sorted by the ids first: a table whose sorting key is the id columns (every table metaxy
        # creates) is read in key order and only each id's rows are sorted by ``order``, not the
        # whole table (1M rows: 2.4x faster than one sort by ``order``). The first row per id is
        # the one ``order`` puts first; ids that compare equal are one group (float 0.0 and -0.0,
        # as in Polars, where LIMIT BY's hashing had made them two).
        ids = [exp.Ordered(this=col(p), desc=False) for p in partition]
        query.set("order", exp.Order(expressions=[*ids, *order]))
        query.set("limit", exp.Limit(expression=lit(1), expressions=[col(p) for p in partition]))
        return query

    def _digest(self, text: exp.Expression, algorithm: HashAlgorithm) -> exp.Expression:
        if algorithm is HashAlgorithm.XXHASH64:
            return func("toString", func("xxHash64", text))
        if algorithm is HashAlgorithm.XXHASH32:
            return func("toString", func("xxHash32", text))
        digest = func("MD5" if algorithm is HashAlgorithm.MD5 else "SHA256", text)
        return func("lower", func("hex", digest))

    def struct_pack(self, items: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        # A named tuple: tuple() is positional, the cast names (and types) the elements.
        fields = ", ".join(f"{_quote(k)} Nullable(String)" for k, _ in items)
        return exp.Cast(
            this=func("tuple", *(v for _, v in items)),
            to=exp.DataType.build(f"Tuple({fields})", dialect=self.name),
        )

    def map_pack(self, items: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        args: list[exp.Expression] = []
        for k, v in items:
            args += [lit(k), v]
        return func("map", *args)

    def pack_row(self, values: Sequence[exp.Expression]) -> exp.Expression | None:
        # a tuple wraps the columns without copying them; one column plans faster than many
        # (an Arrow struct of fields "1", "2", ... in the result)
        return func("tuple", *values)

    def row_field(self, packed: exp.Expression, i: int) -> exp.Expression:
        return func("tupleElement", packed, lit(i + 1))

    def by_field(self, value: exp.Expression, key: str, *, is_map: bool) -> exp.Expression:
        if is_map:
            return exp.Bracket(this=value, expressions=[lit(key)])
        return func("tupleElement", value, lit(key))

    def string_agg(self, value: exp.Expression, separator: str, order: Sequence[exp.Expression]) -> exp.Expression:
        # No ORDER BY inside aggregates: sort (order..., value) tuples, keep the non-NULL values.
        pairs = func("arraySort", func("groupArray", func("tuple", *order, value)))
        last = exp.Lambda(this=func("tupleElement", exp.column("t"), lit(len(order) + 1)), expressions=[ident("t")])
        values = func("arrayMap", last, pairs)
        present = exp.Lambda(
            this=exp.Not(this=exp.Is(this=exp.column("v"), expression=exp.Null())), expressions=[ident("v")]
        )
        kept = func("arrayFilter", present, values)
        joined = func("arrayStringConcat", kept, lit(separator))
        return exp.If(this=exp.EQ(this=func("length", kept), expression=lit(0)), true=exp.Null(), false=joined)

    def text(self, value: exp.Expression) -> exp.Expression:
        return exp.Cast(this=value, to=exp.DataType.build("Nullable(String)", dialect=self.name))

    def joined(self, parts: Sequence[exp.Expression], required: Sequence[exp.Expression]) -> exp.Expression:
        # concatWithSeparator is NULL when an argument is: no CASE, each value read once
        return func("concatWithSeparator", lit("|"), *parts)

    def _type_name(self, arrow: pa.DataType) -> str:
        import pyarrow as pa

        if pa.types.is_timestamp(arrow):
            return f"Nullable(DateTime64(6, '{arrow.tz or 'UTC'}'))" if arrow.tz else "Nullable(DateTime64(6))"
        if pa.types.is_struct(arrow):
            return "Tuple(" + ", ".join(f"{_quote(f.name)} {self._type_name(f.type)}" for f in arrow) + ")"
        if pa.types.is_map(arrow):
            return f"Map(String, {self._type_name(arrow.item_type)})"
        if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
            return f"Array({self._type_name(arrow.value_type)})"
        scalar = super()._type_name(arrow)
        names = {
            "TEXT": "String",
            "BOOLEAN": "Bool",
            "TINYINT": "Int8",
            "SMALLINT": "Int16",
            "INT": "Int32",
            "BIGINT": "Int64",
            "UTINYINT": "UInt8",
            "USMALLINT": "UInt16",
            "UINT": "UInt32",
            "UBIGINT": "UInt64",
            "FLOAT": "Float32",
            "DOUBLE": "Float64",
            "DATE": "Date32",
            "BLOB": "String",
        }
        return f"Nullable({names[scalar]})"


_DIALECTS: dict[str, type[SqlDialect]] = {d.name: d for d in (DuckDBDialect, PostgresDialect, ClickHouseDialect)}


def dialect_for(name: str) -> SqlDialect:
    """The dialect object for a sqlglot dialect name (``duckdb``, ``postgres``, ``clickhouse``).

    Raises:
        ValueError: no dialect of that name.
    """
    try:
        return _DIALECTS[name]()
    except KeyError:
        raise ValueError(f"No SQL dialect {name!r}. Hint: use one of {sorted(_DIALECTS)}.") from None
