"""``metaxy.ext.postgresql.PostgreSQLMetadataStore``: metadata in a PostgreSQL database.

Reads and ``resolve_update`` run as one SQL statement inside PostgreSQL (rendered by the SQL
layer's :class:`~metaxy.sql.dialects.PostgresDialect`); only the result crosses the wire, through
``COPY (query) TO STDOUT`` as CSV parsed by Polars into Arrow memory. Writes stream CSV into
``COPY table FROM STDIN`` inside one transaction.

Column types: scalars map to PostgreSQL types; nested columns (the ``*_by_field`` structs, user
structs and lists) are stored as ``jsonb``. The table's Arrow schema is kept in the table's
``COMMENT`` (written in the same transaction as the DDL), so reads return the written types.

psycopg is imported only when a store opens (``import metaxy`` stays light).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any

import narwhals as nw
import polars as pl
from pydantic import SecretStr
from sqlglot import exp

from metaxy.errors import (
    BackendError,
    MetadataSchemaError,
)
from metaxy.metadata_store import _native_resolve
from metaxy.metadata_store.base import MetadataStore, MetadataStoreConfig
from metaxy.metadata_store.contract import AppendSource, ReadRequest, ResolveRequest, StoreCapabilities
from metaxy.metadata_store.types import AccessMode, Increment, LazyIncrement
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import FeatureKey
from metaxy.sql import statements as st
from metaxy.sql._build import col, select, star, subquery, table
from metaxy.sql.dialects import PostgresDialect
from metaxy.sql.statements import SqlSource
from metaxy.versioning.hashing import HashAlgorithm

__all__ = ["PostgreSQLMetadataStore", "PostgreSQLMetadataStoreConfig"]

_LOCK_NAMESPACE = 0x6D78  # pg_advisory_xact_lock(namespace, hashtext(table)) serialises DDL per table
_SQLSTATE_UNAVAILABLE = ("08", "57P")  # connection exceptions, operator intervention (shutdown)


class PostgreSQLMetadataStoreConfig(MetadataStoreConfig):
    connection_string: SecretStr | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: SecretStr | None = None
    dbname: str | None = None
    schema_: str | None = None
    table_prefix: str = ""
    connect_timeout: float = 10.0
    sslmode: str | None = None
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None

    model_config = {"populate_by_name": True}

    def __init__(self, **data: Any) -> None:
        if "schema" in data:
            data["schema_"] = data.pop("schema")
        super().__init__(**data)


def _secret(value: SecretStr | str | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class PostgreSQLMetadataStore(MetadataStore):
    """Metadata in PostgreSQL tables (one per feature), shared by many writing processes.

    Args:
        connection_string: ``postgresql://user:password@host:5432/dbname`` (any libpq URI or
            ``key=value`` string); parameters given separately override its parts.
        host, port, user, password, dbname: libpq connection parameters.
        schema: the PostgreSQL schema holding the tables (created when missing and allowed);
            default: the role's ``search_path``.
        table_prefix: prepended to every table name.
        connect_timeout: seconds to wait for a connection.
        sslmode, sslrootcert, sslcert, sslkey: libpq SSL options.
        **kwargs: the common store arguments (``hash_algorithm``, ``fallback_stores``,
            ``auto_create_tables``, ``materialization_id``, ``name``, ``versioning_engine``).
    """

    capabilities = StoreCapabilities(
        hash_algorithms=frozenset(PostgresDialect.hash_algorithms),
        default_hash_algorithm=HashAlgorithm.MD5,
        native_resolve=True,
        map_type=False,
        transactions=True,
        concurrency="many_writers",
        content_digest=False,
        location=True,
        creates_tables=False,
    )
    config_class = PostgreSQLMetadataStoreConfig
    dialect = PostgresDialect()

    def __init__(
        self,
        connection_string: str | SecretStr | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | SecretStr | None = None,
        dbname: str | None = None,
        schema: str | None = None,
        table_prefix: str = "",
        connect_timeout: float = 10.0,
        sslmode: str | None = None,
        sslrootcert: str | None = None,
        sslcert: str | None = None,
        sslkey: str | None = None,
        **kwargs: Any,
    ) -> None:
        schema = kwargs.pop("schema_", schema)
        super().__init__(**kwargs)
        self._connection_string = SecretStr(_secret(connection_string) or "")
        self._password = SecretStr(_secret(password) or "")
        params = dict(host=host, port=port, user=user, dbname=dbname, sslmode=sslmode)
        params.update(sslrootcert=sslrootcert, sslcert=sslcert, sslkey=sslkey)
        self._params = {k: v for k, v in params.items() if v is not None}
        self.schema = schema
        self.table_prefix = table_prefix
        self.connect_timeout = connect_timeout
        if not self._connection_string.get_secret_value() and not self._params:
            raise BackendError(
                "PostgreSQLMetadataStore needs a connection_string or host/dbname parameters. "
                "Hint: PostgreSQLMetadataStore('postgresql://user:password@host:5432/dbname')."
            )

    # --- display ----------------------------------------------------------------------------------
    def _display_target(self) -> str:
        from psycopg.conninfo import conninfo_to_dict  # light: pure Python

        info = conninfo_to_dict(self._connection_string.get_secret_value(), **self._params)
        where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        return f"postgresql://{where}" + (f" schema={self.schema}" if self.schema else "")

    def _secrets(self) -> list[str]:
        from psycopg.conninfo import conninfo_to_dict

        out = [self._password.get_secret_value()]
        with contextlib.suppress(Exception):
            out.append(str(conninfo_to_dict(self._connection_string.get_secret_value()).get("password") or ""))
        return [s for s in out if s]

    def _error(self, what: str, exc: BaseException) -> BackendError:
        text = str(exc)
        for secret in self._secrets():
            text = text.replace(secret, "***")
        state = getattr(exc, "sqlstate", None) or ""
        unavailable = state.startswith(_SQLSTATE_UNAVAILABLE) or type(exc).__name__ == "OperationalError"
        hint = (
            "Hint: check that the PostgreSQL server is running and reachable; nothing of this operation was committed."
            if unavailable
            else "Hint: check the role's permissions and the table's schema."
        )
        return BackendError(f"{what} on {self.display()} failed: {text.strip()}. {hint}")

    # --- connection -------------------------------------------------------------------------------
    @property
    def conn(self) -> Any:
        self._require_open()
        return self._local.backend["conn"]

    def _open_backend(self, mode: AccessMode) -> None:
        import psycopg
        from psycopg.types.string import TextLoader

        kwargs: dict[str, Any] = dict(self._params, connect_timeout=max(1, int(self.connect_timeout)))
        if self._password.get_secret_value():
            kwargs["password"] = self._password.get_secret_value()
        try:
            conn = psycopg.connect(self._connection_string.get_secret_value(), autocommit=True, **kwargs)
        except psycopg.Error as exc:
            raise self._error("Connecting", exc) from None
        conn.adapters.register_loader("jsonb", TextLoader)
        try:
            conn.execute("SET TimeZone = 'UTC'")
            if self.schema:
                q = self.dialect.identifier(self.schema)
                if mode == "w":
                    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone()
                    if not exists:
                        # IF NOT EXISTS is not safe against a concurrent creator (a unique violation
                        # in pg_namespace): one creator at a time, as writes that create it do.
                        with conn.transaction():
                            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, "schema"))
                            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
                conn.execute(f"SET search_path TO {q}")
        except psycopg.Error as exc:
            conn.close()
            raise self._error("Opening", exc) from None
        self._local.backend.update(conn=conn, schemas={})

    def _close_backend(self) -> None:
        conn = self._local.backend.pop("conn", None)
        self._local.backend.clear()
        if conn is not None:
            conn.close()

    def _run(self, what: str, sql: str, params: Any = None) -> Any:
        import psycopg

        try:
            return self.conn.execute(sql, params)
        except psycopg.Error as exc:
            raise self._error(what, exc) from exc

    # --- catalog ----------------------------------------------------------------------------------
    def _table(self, key: FeatureKey) -> str:
        return self.table_prefix + key.table_name

    def _schema_name(self) -> str:
        return "current_schema()"

    def _list_tables(self) -> list[str]:
        rows = self._run(
            "Listing tables",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_name LIKE %s",
            (self.table_prefix.replace("_", r"\_").replace("%", r"\%") + "%",),
        ).fetchall()
        return sorted(r[0] for r in rows)

    def _stored_schema(self, table_name: str) -> pl.Schema | None:
        """The table's Polars schema from its comment (None when the table does not exist)."""
        row = self._run(
            "Reading the catalog",
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            (table_name,),
        ).fetchone()
        if row is None:
            return None
        return _decode_schema(row[0]) if row[0] else pl.Schema()

    def _table_exists(self, table_name: str) -> bool:
        return self._stored_schema(table_name) is not None

    def _columns(self, table_name: str) -> tuple[str, ...]:
        schema = self._stored_schema(table_name)
        if schema is None:
            raise KeyError(table_name)
        return tuple(schema)

    def _column_names(self, table_name: str) -> list[str]:
        return list(self._columns(table_name))

    def _table_schema(self, table_name: str) -> pl.Schema:
        schema = self._stored_schema(table_name)
        if schema is None:
            raise KeyError(table_name)
        return schema

    def _drop(self, table_name: str) -> None:
        self._run("Dropping a table", self.dialect.render(st.drop_table(table_name)))

    # --- reads --------------------------------------------------------------------------------------
    def _fetch(
        self,
        query: exp.Expression,
        schema: dict[str, pl.DataType],
        conn: Any = None,
        *,
        by_key: Sequence[str] = (),
        render: Callable[[Callable[[], exp.Expression]], str] | None = None,
    ) -> pl.DataFrame:
        """Run ``query`` and return its rows as a Polars frame of ``schema`` (the query's columns, in
        order): ``COPY (query) TO STDOUT`` as CSV, parsed by Polars; timestamps cross as epoch
        microseconds, dates as day numbers, booleans as 0/1, nested columns as JSON text.

        ``by_key``: never-NULL struct columns of string fields (the ``*_by_field`` columns a resolve
        computes) that cross as one CSV column per key (``->>``) and are rebuilt as structs in
        Polars: no JSON text to write or parse. ``render(build)``: the SQL text of the statement
        ``build()`` makes (default: rendered now; a resolve passes its memoised renderer)."""
        import psycopg

        items, csv_types, structs = _copy_columns(schema, by_key)
        build = lambda: select(items, subquery(query, "__metaxy_out"))  # noqa: E731
        text = render(build) if render is not None else self.dialect.render(build())
        sql = f"COPY ({text}) TO STDOUT WITH (FORMAT csv, NULL '\\N')"
        buf = io.BytesIO()
        try:
            with (conn or self.conn).cursor() as cur, cur.copy(sql) as copy:
                for block in copy:
                    buf.write(block)
        except psycopg.Error as exc:
            raise self._error("Reading", exc) from exc
        if not schema:
            return pl.DataFrame()
        raw = (
            pl.read_csv(
                buf.getvalue(),
                has_header=False,
                new_columns=list(csv_types),
                schema_overrides=csv_types,
                null_values="\\N",
            )
            if buf.tell()
            else pl.DataFrame(schema=csv_types)
        )
        return raw.select(
            pl.struct([pl.col(part).alias(key) for part, key in structs[name]]).alias(name)
            if name in structs
            else _decode(name, dtype)
            for name, dtype in schema.items()
        )

    def _scan(self, table_name: str) -> pl.DataFrame:
        schema = self._table_schema(table_name)
        return self._fetch(select([star()], table(table_name)), dict(schema))

    def _read_frame(self, request: ReadRequest) -> nw.LazyFrame[Any] | None:
        schema = self._table_schema(request.table)
        src = SqlSource(request.table, tuple(schema), tuple(request.filters))
        query = st.latest_rows(
            self.dialect,
            src,
            request.id_columns,
            request.feature_version,
            sample_history=request.with_sample_history,
            keep_deleted=request.include_soft_deleted,
        )
        names = request.columns if request.columns is not None else tuple(schema)
        query = select([col(n) for n in names], subquery(query, "__metaxy_read"))
        return nw.from_native(self._fetch(query, {n: schema[n] for n in names}).lazy())

    # --- writes -------------------------------------------------------------------------------------
    def _append(self, table_name: str, rows: AppendSource) -> int:
        """All rows in one transaction: under a per-table advisory lock, create the table (or add the
        frame's new columns), then ``COPY ... FROM STDIN`` the rows as CSV. A failure (or a killed
        writer) rolls everything back."""
        import psycopg

        with rows.reraising():
            df = rows.to_polars().collect()
        incoming = df.schema
        conn = self.conn
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, table_name))
                stored = self._stored_schema(table_name)
                q = self.dialect.identifier(table_name)
                if stored is None and self.schema:
                    # a schema missing at open (e.g. opened for reading): create it, one process at a time
                    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, "schema"))
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.dialect.identifier(self.schema)}")
                if stored is None:
                    defs = ", ".join(f"{self.dialect.identifier(n)} {_sql_type(n, t)}" for n, t in incoming.items())
                    conn.execute(f"CREATE TABLE {q} ({defs})")
                    merged = pl.Schema(incoming)
                else:
                    merged = pl.Schema(stored)
                    for n, t in incoming.items():
                        if n not in stored:
                            conn.execute(f"ALTER TABLE {q} ADD COLUMN {self.dialect.identifier(n)} {_sql_type(n, t)}")
                            merged[n] = t
                if merged != stored:
                    conn.execute(f"COMMENT ON TABLE {q} IS {_quote_literal(_encode_schema(merged))}")
                if df.height:
                    names = ", ".join(self.dialect.identifier(n) for n in df.columns)
                    payload = _to_csv(df)
                    with (
                        conn.cursor() as cur,
                        cur.copy(f"COPY {q} ({names}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy,
                    ):
                        view = memoryview(payload)
                        for start in range(0, len(view), 1 << 20):
                            copy.write(view[start : start + (1 << 20)])
        except psycopg.Error as exc:
            raise self._error(f"Writing table '{table_name}'", exc) from exc
        return df.height

    def _delete_where(self, table_name: str, where: FilterExpression | None) -> int:
        condition = None if where is None else where.to_sqlglot(self.dialect.name)
        cur = self._run(f"Deleting from '{table_name}'", self.dialect.render(st.delete_where(table_name, condition)))
        return max(int(cur.rowcount), 0)

    # --- native resolve -----------------------------------------------------------------------------
    def _resolve_native(self, request: ResolveRequest, *, strict: bool, lazy: bool) -> LazyIncrement | Increment | None:
        native = _native_resolve.prepare(self, request, self.dialect, strict=strict, engine="PostgreSQL", types=True)
        if native is None:
            return None
        compiled = native.rendered.compiled
        conn = self.conn  # lazy frames collect on Polars' threads (psycopg connections are thread-safe)

        def fetch(which: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
            query = {"increment": compiled.increment, "expected": compiled.computed}.get(which, compiled.expected)
            assert query is not None
            by_key = () if which == "input" else (c.PROVENANCE_BY_FIELD,)
            # the COPY statement is rendered once per cached plan (and column types)
            key = f"postgresql:{which}:" + ",".join(f"{n}={t}" for n, t in schema.items())

            def render(build: Callable[[], exp.Expression]) -> str:
                return native.rendered.text(key, lambda _compiled: build())

            return self._fetch(query, schema, conn, by_key=by_key, render=render)

        return _native_resolve.fetched_increment(native, request, fetch, lazy=lazy)

    def _location_uri(self, key: FeatureKey) -> str | None:
        return f"{self._display_target().split(' ')[0]}#{self.schema or 'public'}.{self._table(key)}"


def _copy_columns(
    schema: dict[str, pl.DataType], by_key: Sequence[str]
) -> tuple[list[Any], dict[str, pl.DataType], dict[str, list[tuple[str, str]]]]:
    """The select items of a ``COPY ... TO`` of ``schema``'s columns, the CSV columns' Polars types,
    and the ``by_key`` structs' parts (CSV column, struct key); see ``_fetch``."""
    items: list[Any] = []
    csv_types: dict[str, pl.DataType] = {}
    structs: dict[str, list[tuple[str, str]]] = {}
    for name, dtype in schema.items():
        ref = col(name)
        item: Any
        if name in by_key and isinstance(dtype, pl.Struct) and all(f.dtype == pl.String for f in dtype.fields):
            structs[name] = [(f"__metaxy_k{len(csv_types) + i}", f.name) for i, f in enumerate(dtype.fields)]
            for part, key in structs[name]:
                path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=key)])
                value = exp.JSONExtractScalar(this=ref, expression=path, only_json_types=True)
                items.append(exp.alias_(value, part, quoted=True))
                csv_types[part] = pl.String()
            continue
        if isinstance(dtype, pl.Datetime):
            item = exp.Cast(this=_epoch_us(ref), to=exp.DataType.build("BIGINT"))
            csv_types[name] = pl.Int64()
        elif isinstance(dtype, pl.Date):
            epoch = exp.Cast(this=exp.Literal.string("1970-01-01"), to=exp.DataType.build("DATE"))
            item = exp.Sub(this=ref, expression=epoch)
            csv_types[name] = pl.Int32()
        elif isinstance(dtype, pl.Boolean):
            item = exp.Cast(this=ref, to=exp.DataType.build("INT"))
            csv_types[name] = pl.Int8()
        elif dtype.is_nested() or isinstance(dtype, pl.Null):
            item = exp.Cast(this=ref, to=exp.DataType.build("TEXT"))
            csv_types[name] = pl.String()
        else:
            item = ref
            csv_types[name] = dtype
        items.append(exp.alias_(item, name, quoted=True))
    return items, csv_types, structs


def _epoch_us(ref: exp.Expression) -> exp.Expression:
    epoch = exp.Extract(this=exp.var("EPOCH"), expression=ref)
    return exp.Mul(this=epoch, expression=exp.Literal.number(1_000_000))


def _decode(name: str, dtype: pl.DataType) -> pl.Expr:
    ref = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return ref.cast(pl.Datetime("us", dtype.time_zone)).cast(dtype)
    if isinstance(dtype, pl.Date):
        return ref.cast(pl.Date)
    if isinstance(dtype, pl.Boolean):
        return ref.cast(pl.Boolean)
    if dtype.is_nested():
        return ref.str.json_decode(dtype)
    return ref.cast(dtype)


def _to_csv(df: pl.DataFrame) -> bytes:
    """The frame as CSV for ``COPY FROM`` (nested columns as JSON, booleans as t/f, NULL as \\N)."""
    out = df.with_columns(
        [pl.col(n).map_batches(_json_column, return_dtype=pl.String) for n, t in df.schema.items() if t.is_nested()]
        + [
            pl.col(n).replace_strict({True: "t", False: "f"}, return_dtype=pl.String)
            for n, t in df.schema.items()
            if isinstance(t, pl.Boolean)
        ]
        + [
            pl.col(n).dt.convert_time_zone("UTC")
            for n, t in df.schema.items()
            if isinstance(t, pl.Datetime) and t.time_zone
        ]
    )
    return out.write_csv(include_header=False, null_value="\\N").encode()


def _json_column(s: pl.Series) -> pl.Series:
    if isinstance(s.dtype, pl.Struct):
        return s.struct.json_encode()
    import json

    return pl.Series(s.name, [None if v is None else json.dumps(v, default=str) for v in s.to_list()], pl.String)


def _sql_type(name: str, dtype: pl.DataType) -> str:
    if dtype.is_nested():
        return "JSONB"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.Null):
        return "TEXT"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "TEXT"
    try:
        arrow = pl.Series(name, [], dtype=dtype).to_arrow().type
        return PostgresDialect().column_type(arrow).sql(dialect="postgres")
    except MetadataSchemaError:
        raise
    except Exception as exc:
        raise MetadataSchemaError(
            f"Column '{name}' of type {dtype} has no PostgreSQL counterpart. "
            "Hint: cast it to a string, number, boolean, date, timestamp, struct or list type."
        ) from exc


def _encode_schema(schema: pl.Schema) -> str:
    arrow = pl.DataFrame(schema=schema).to_arrow().schema
    return "metaxy:" + base64.b64encode(arrow.serialize().to_pybytes()).decode()


def _decode_schema(text: str) -> pl.Schema:
    return pl.Schema(_decoded_schema(text))  # a copy: callers may extend it


@functools.lru_cache(maxsize=512)
def _decoded_schema(text: str) -> pl.Schema:
    # Every catalog lookup decodes the table's comment: ~4 ms through Arrow, so memoised by text.
    import pyarrow as pa

    if not text.startswith("metaxy:"):
        return pl.Schema()
    arrow = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text[len("metaxy:") :])))
    return pl.DataFrame(arrow.empty_table()).schema


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
