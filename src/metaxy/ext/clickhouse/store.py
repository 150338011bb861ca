"""``ClickHouseMetadataStore``: metadata in ClickHouse MergeTree tables, on a server or embedded.

Reads and ``resolve_update`` run as one SQL statement inside ClickHouse (rendered by
:class:`~metaxy.sql.dialects.ClickHouseDialect`, the same text on both transports); only the result
crosses into Python, as Arrow.

**Atomic appends.** A ClickHouse ``INSERT`` is atomic only per block: a large insert becomes several
data parts, each visible as soon as it is committed. An append therefore inserts into a private
staging table (``__metaxy_stage_<uuid>``, the target's structure, one per connection and table,
reused while its structure matches), then moves all of its parts into the target with one
``ALTER TABLE stage MOVE PARTITION tuple() TO TABLE target`` -- a single commit of the target's
part set. A failed write drops the stage; a killed one leaves at most an orphaned stage table
(hidden from the store, removable with :meth:`ClickHouseMetadataStore.drop_stale_stages`), never
partial rows in a feature table.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import narwhals as nw
import polars as pl
from pydantic import SecretStr
from sqlglot import exp

from metaxy.config._checks import check_store_settings
from metaxy.errors import BackendError
from metaxy.metadata_store.base import MetadataStore
from metaxy.metadata_store.contract import AppendSource, ReadRequest, ResolveRequest, StoreCapabilities
from metaxy.metadata_store.types import AccessMode, Increment, LazyIncrement
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import FeatureKey
from metaxy.sql import statements as st
from metaxy.sql._build import col, select, star, subquery, table
from metaxy.sql.dialects import ClickHouseDialect
from metaxy.sql.statements import SqlSource
from metaxy.versioning.hashing import HashAlgorithm

from . import _transport, _types
from ._config import ClickHouseMetadataStoreConfig, Target, parse_target
from ._transport import Transport, TransportError, open_transport

__all__ = ["ClickHouseMetadataStore", "ClickHouseMetadataStoreConfig"]

STAGE_PREFIX = "__metaxy_stage_"
_write_chunk_rows = 250_000
_table_locks: dict[tuple[str, str, str], threading.Lock] = {}
_table_locks_guard = threading.Lock()
# the embedded engine's tables: (schema, rows) by (directory, database, table)
_catalog_cache: dict[tuple[str, str, str], tuple[pl.Schema | None, int]] = {}
_cache_state = {"epoch": 0, "changes": 0}  # the engine epoch the caches hold; invalidations so far
#: A resolve carries the stored columns through its comparison when the stored table holds at most
#: this many rows (all versions), and fetches orphaned rows back by row number above it: measured
#: equal at 100k rows, carrying ~10% faster at 10k and ~20% slower at 1M (benchmarks/clickhouse.py).
CARRY_MAX_ROWS = 100_000


def _secret(value: SecretStr | str | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def literal(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ClickHouseMetadataStore(MetadataStore):
    """Metadata in ClickHouse: a server (``clickhouse+http://``, ``clickhouse+native://``) through
    ``clickhouse-connect``, or the embedded engine (``chdb:///dir``, ``chdb://:memory:``) through chdb.

    Args:
        connection_string: where to connect (see :mod:`metaxy.ext.clickhouse._config`); parameters
            given separately override its parts.
        host, port, http_port, user, password, database, secure: server connection parameters.
        table_prefix: prepended to every table name.
        connect_timeout: seconds to wait for a server connection.
        lock_timeout: embedded engine only: seconds to wait while another process has the engine
            directory open (chdb lets one process at a time open it), then ``StoreBusyError``.
        settings: ClickHouse settings sent with every server query.
        **kwargs: the common store arguments (``hash_algorithm``, ``fallback_stores``,
            ``auto_create_tables``, ``materialization_id``, ``name``, ``versioning_engine``).

    Example:
        >>> store = ClickHouseMetadataStore("chdb://:memory:", auto_create_tables=True)  # doctest: +SKIP
    """

    capabilities = StoreCapabilities(
        hash_algorithms=frozenset(ClickHouseDialect.hash_algorithms),
        default_hash_algorithm=HashAlgorithm.MD5,
        native_resolve=True,
        map_type=True,
        transactions=True,
        concurrency="many_writers",
        content_digest=False,
        location=True,
        creates_tables=False,
    )
    config_class = ClickHouseMetadataStoreConfig
    dialect = ClickHouseDialect()

    def __init__(
        self,
        connection_string: str | SecretStr | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        http_port: int | None = None,
        user: str | None = None,
        password: str | SecretStr | None = None,
        database: str | None = None,
        secure: bool | None = None,
        table_prefix: str = "",
        connect_timeout: float = 10.0,
        lock_timeout: float = 30.0,
        settings: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_store_settings(type(self).__name__, lock_timeout=lock_timeout)
        self._target: Target = parse_target(
            _secret(connection_string),
            host=host,
            port=port,
            http_port=http_port,
            user=user,
            password=_secret(password),
            database=database,
            secure=secure,
        )
        self.table_prefix = table_prefix
        self.connect_timeout = connect_timeout
        self.lock_timeout = lock_timeout
        self.clickhouse_settings = dict(settings or {})
        self._keys: dict[str, FeatureKey] = {}

    @property
    def target(self) -> Target:
        """The parsed connection target (its password is a ``SecretStr``)."""
        return self._target

    @property
    def embedded(self) -> bool:
        return self._target.kind == "chdb"

    # --- display and errors -------------------------------------------------------------------------
    def _display_target(self) -> str:
        return self._target.display()

    def _error(self, what: str, exc: TransportError) -> BackendError:
        text = str(exc)
        secret = self._target.password.get_secret_value()
        if secret:
            text = text.replace(secret, "***")
        hint = exc.hint or (
            "Hint: check that the ClickHouse server is running and reachable; nothing of this operation was written."
            if exc.unavailable
            else "Hint: check the table's schema and the user's permissions."
        )
        return BackendError(f"{what} on {self.display()} failed: {text.rstrip('.')}. {hint}")

    # --- connection -----------------------------------------------------------------------------------
    @property
    def transport(self) -> Transport:
        self._require_open()
        tr: Transport = self._local.backend["tr"]
        return tr

    def _open_backend(self, mode: AccessMode) -> None:
        try:
            tr = open_transport(
                self._target,
                connect_timeout=self.connect_timeout,
                settings=self.clickhouse_settings,
                create_database=mode == "w" or self.embedded,
                lock_timeout=self.lock_timeout,
            )
        except TransportError as exc:
            raise self._error("Connecting", exc) from None
        self._local.backend["tr"] = tr

    def _close_backend(self) -> None:
        for name in list(self._local.backend.get("stages", {})):
            self._discard_stage(name)
        tr = self._local.backend.pop("tr", None)
        self._local.backend.clear()
        if tr is not None:
            tr.close()

    def _command(self, what: str, sql: str) -> None:
        try:
            self.transport.command(sql)
        except TransportError as exc:
            raise self._error(what, exc) from None

    def _query(self, what: str, sql: str) -> Any:
        try:
            return self.transport.query_arrow(sql)
        except TransportError as exc:
            raise self._error(what, exc) from None

    def _sql(self, statement: exp.Expression) -> str:
        return self.dialect.render(statement)

    def _q(self, name: str) -> str:
        return self.dialect.identifier(name)

    # --- catalog --------------------------------------------------------------------------------------
    def _table(self, key: FeatureKey) -> str:
        name = self.table_prefix + key.table_name
        self._keys[name] = key
        return name

    def _list_tables(self) -> list[str]:
        like = self.table_prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"
        rows = self._query(
            "Listing tables",
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            f"AND name LIKE {literal(like)} AND NOT startsWith(name, {literal(STAGE_PREFIX)})",
        )
        return sorted(rows.column(0).to_pylist()) if rows.num_columns else []

    def _cache_key(self, name: str) -> tuple[str, str, str] | None:
        """Key of the process-wide catalog cache: only for the embedded engine, where
        every writer of the data directory is this process while it holds the directory (it
        invalidates an entry on DDL and writes); emptied when the process takes the directory
        again, as other processes may have written in between."""
        if not self.embedded:
            return None
        epoch = _transport.engine_epoch()
        if epoch != _cache_state["epoch"]:
            with _table_locks_guard:
                if epoch != _cache_state["epoch"]:
                    _catalog_cache.clear()
                    _cache_state["epoch"] = epoch
        return (self._target.path or "", self._target.database, name)

    def _table_changed(self, name: str) -> None:
        """Forget what the cache holds of table ``name`` (after DDL, a write or a delete)."""
        key = self._cache_key(name)
        if key is not None:
            with _table_locks_guard:
                _catalog_cache.pop(key, None)
                _cache_state["changes"] += 1

    def _carries(self, name: str) -> bool:
        """Whether a resolve carries stored table ``name``'s columns through its comparison (see
        :data:`CARRY_MAX_ROWS`) rather than fetching orphaned rows back by row number."""
        return self._catalog(name)[1] <= CARRY_MAX_ROWS

    def _stored_schema(self, name: str) -> pl.Schema | None:
        return self._catalog(name)[0]

    def _catalog(self, name: str) -> tuple[pl.Schema | None, int]:
        """Table ``name``'s schema (None: no such table) and rows, from :meth:`_read_catalog`; kept
        for the embedded engine (see :meth:`_cache_key`), missing tables too, unless a write or DDL
        landed while reading."""
        key = self._cache_key(name)
        if key is None:
            return self._read_catalog(name)
        with _table_locks_guard:
            if key in _catalog_cache:
                return _catalog_cache[key]
            changes = _cache_state["changes"]
        value = self._read_catalog(name)
        with _table_locks_guard:
            if _cache_state["changes"] == changes:
                _catalog_cache[key] = value
        return value

    def _read_catalog(self, name: str) -> tuple[pl.Schema | None, int]:
        """The schema (the Polars schema metaxy keeps in the table's comment, else the engine's own
        types) and the rows of table ``name`` (every version; masked deleted rows until a merge
        removes them; 0 for a table that is not a MergeTree, which has no row number to fetch
        orphans back by either), in one catalog query."""
        rows = self._query(
            "Reading the catalog",
            "SELECT comment, total_rows FROM system.tables "
            f"WHERE database = currentDatabase() AND name = {literal(name)}",
        )
        if not rows.num_rows:
            return None, 0
        count = int(rows.column(1)[0].as_py() or 0)
        schema = _types.decode_schema(rows.column(0)[0].as_py() or "")
        if schema is None:  # a table metaxy did not create: the engine's own types
            probe = self._query("Reading the catalog", f"SELECT * FROM {self._q(name)} LIMIT 0")
            schema = pl.DataFrame(probe).schema
        return schema, count

    def _table_exists(self, name: str) -> bool:
        return self._stored_schema(name) is not None

    def _table_schema(self, name: str) -> pl.Schema:
        schema = self._stored_schema(name)
        if schema is None:
            raise KeyError(name)
        return schema

    def _column_names(self, name: str) -> list[str]:
        return list(self._table_schema(name))

    def _storable(self, lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
        return lf

    def _drop(self, name: str) -> None:
        with self._table_lock(name):
            self._table_changed(name)
            self._command("Dropping a table", f"DROP TABLE IF EXISTS {self._q(name)} SYNC")
            self._table_changed(name)

    # --- reads ----------------------------------------------------------------------------------------
    def fetch(self, query: exp.Expression, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """Run ``query`` and return its rows as a Polars frame of ``schema`` (the query's columns)."""
        return _types.conform(self._query("Reading", self._sql(query)), schema)

    def _scan(self, name: str) -> pl.DataFrame:
        schema = self._table_schema(name)
        return self.fetch(select([star()], table(name)), dict(schema))

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
        return nw.from_native(self.fetch(query, {n: schema[n] for n in names}).lazy())

    # --- writes ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _table_lock(self, name: str) -> Iterator[None]:
        """Serialise DDL and part moves on one table within this process."""
        key = (self._target.display(), self._target.database, name)
        with _table_locks_guard:
            lock = _table_locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def _order_by(self, name: str, columns: pl.Schema) -> str:
        key = self._keys.get(name)
        ids: tuple[str, ...] = ()
        if key is not None:
            with contextlib.suppress(Exception):
                from metaxy.versioning.plan import compile_plan

                ids = tuple(compile_plan(self._graph(), key).id_columns)
        ids = tuple(i for i in ids if i in columns and not columns[i].is_nested())
        return "(" + ", ".join(self._q(i) for i in ids) + ")" if ids else "tuple()"

    def _create(self, name: str, schema: pl.Schema) -> None:
        defs = ", ".join(f"{self._q(n)} {_types.ddl_type(n, t)}" for n, t in schema.items())
        self._command(
            f"Creating table '{name}'",
            f"CREATE TABLE IF NOT EXISTS {self._q(name)} ({defs}) ENGINE = MergeTree "
            f"ORDER BY {self._order_by(name, schema)} SETTINGS allow_nullable_key = 1 "
            f"COMMENT {literal(_types.encode_schema(schema))}",
        )

    def _append(self, name: str, rows: AppendSource) -> int:
        """Insert into this connection's staging table, then move its parts into the target in one
        commit (see the module docs). New columns are added to the target first, under the table's
        lock."""
        import pyarrow as pa

        lf = _types.storable_frame(rows.to_polars())
        incoming = lf.collect_schema()
        for n, t in incoming.items():
            _types.ddl_type(n, t)  # refuse unstorable types before anything is created
        written = 0
        failure: list[BaseException] = []
        arrow_schema = pl.DataFrame(schema=incoming).to_arrow().schema

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal written
            try:
                for chunk in lf.collect_batches(chunk_size=_write_chunk_rows):
                    written += chunk.height
                    yield from chunk.to_arrow().cast(arrow_schema).to_batches()
            except BaseException as exc:
                failure.append(exc)
                raise

        with self._table_lock(name):
            stored = self._stored_schema(name)
            created = stored is None
            if stored is None:
                self._create(name, pl.Schema(incoming))
                merged = pl.Schema(incoming)
            else:
                merged = pl.Schema(stored)
                for n, t in incoming.items():
                    if n not in stored:
                        self._table_changed(name)
                        add = f"ADD COLUMN IF NOT EXISTS {self._q(n)} {_types.ddl_type(n, t)}"
                        self._command(f"Adding column '{n}' to '{name}'", f"ALTER TABLE {self._q(name)} {add}")
                        merged[n] = t
                if merged != stored:
                    self._command(
                        f"Writing the schema of '{name}'",
                        f"ALTER TABLE {self._q(name)} MODIFY COMMENT {literal(_types.encode_schema(merged))}",
                    )
            self._table_changed(name)
            try:
                stage = self._stage(name, merged)
                reader = pa.RecordBatchReader.from_batches(arrow_schema, batches())
                try:
                    self.transport.insert_arrow(stage, list(incoming), reader)
                except BaseException as exc:
                    self._discard_stage(name)  # it may hold some of the rows: never attach them
                    if failure and failure[0] is not exc:
                        raise failure[0] from None
                    if isinstance(exc, TransportError):
                        raise self._error(f"Writing table '{name}'", exc) from None
                    raise
                if written:
                    # one commit of the target's part set: all rows of the write appear at once
                    self._command(
                        f"Writing table '{name}'",
                        f"ALTER TABLE {self._q(stage)} MOVE PARTITION tuple() TO TABLE {self._q(name)}",
                    )
                    self._table_changed(name)
            except BaseException:
                if created:  # no other writer of this process can have used it (the table's lock is held)
                    self._discard_stage(name)
                    with contextlib.suppress(BackendError):
                        self._command("Dropping a table", f"DROP TABLE IF EXISTS {self._q(name)} SYNC")
                    self._table_changed(name)
                raise
        return written

    def _stage(self, name: str, schema: pl.Schema) -> str:
        """This connection's empty staging table for ``name`` (created with the target's structure,
        kept for the connection's life and re-created when the target's columns changed)."""
        stages: dict[str, tuple[str, pl.Schema]] = self._local.backend.setdefault("stages", {})
        known = stages.get(name)
        if known is not None and known[1] == schema:
            return known[0]
        if known is not None:
            self._discard_stage(name)
        stage = f"{STAGE_PREFIX}{uuid.uuid4().hex}"
        self._command("Creating a staging table", f"CREATE TABLE {self._q(stage)} AS {self._q(name)}")
        stages[name] = (stage, schema)
        return stage

    def _discard_stage(self, name: str) -> None:
        stages: dict[str, tuple[str, pl.Schema]] = self._local.backend.get("stages", {})
        known = stages.pop(name, None)
        tr: Transport | None = self._local.backend.get("tr")
        if known is not None and tr is not None:
            with contextlib.suppress(TransportError):  # left behind: drop_stale_stages() removes it
                tr.command(f"DROP TABLE IF EXISTS {self._q(known[0])}")

    def _delete_where(self, name: str, where: FilterExpression | None) -> int:
        """A lightweight ``DELETE FROM ... WHERE`` (rows are masked at once, removed at the next merge)."""
        condition = None if where is None else where.to_sqlglot(self.dialect.name)
        count = select([exp.Count(this=exp.Star())], table(name), where=condition)
        with self._table_lock(name):
            n = int(self._query(f"Deleting from '{name}'", self._sql(count)).column(0)[0].as_py())
            if n:
                sql = self._sql(st.delete_where(name, condition if condition is not None else exp.true()))
                self._command(f"Deleting from '{name}'", sql + " SETTINGS lightweight_deletes_sync = 2")
                self._table_changed(name)
        return n

    def drop_stale_stages(self) -> list[str]:
        """Drop the staging tables that killed writers left behind (none of their rows were ever
        visible). Call it when no write is running; returns the names dropped."""
        self._require_write()
        rows = self._query(
            "Listing staging tables",
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            f"AND startsWith(name, {literal(STAGE_PREFIX)})",
        )
        names = rows.column(0).to_pylist() if rows.num_columns else []
        for n in names:
            self._command("Dropping a staging table", f"DROP TABLE IF EXISTS {self._q(n)} SYNC")
        return sorted(names)

    # --- native resolve ---------------------------------------------------------------------------------
    def _resolve_native(self, request: ResolveRequest, *, strict: bool, lazy: bool) -> LazyIncrement | Increment | None:
        from ._resolve import resolve_native

        return resolve_native(self, request, strict=strict, lazy=lazy)

    def _location_uri(self, key: FeatureKey) -> str | None:
        return f"{self._target.display().split(' ')[0]}#{self._target.database}.{self._table(key)}"
