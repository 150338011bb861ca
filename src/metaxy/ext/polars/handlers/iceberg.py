"""``IcebergMetadataStore``: one Apache Iceberg table per feature, in a PyIceberg catalog.

``type = "metaxy.ext.polars.handlers.iceberg.IcebergMetadataStore"`` in ``metaxy.toml``.

Tables are ``<namespace>.<key.table_name>`` in the catalog named ``catalog_name``; their files
live under ``warehouse`` (a local directory or an object-store URI such as ``s3://bucket/prefix``).
The catalog is any PyIceberg catalog, configured by ``catalog_properties`` (passed to
``pyiceberg.catalog.load_catalog``: ``{"type": "rest", "uri": ...}``, ``{"type": "glue"}``,
``{"uri": "sqlite:///..."}`` ...). Without one, a local warehouse gets a SQL catalog on SQLite in
``<warehouse>/catalog.db``; an object-store warehouse must name its catalog (a SQLite file on
one machine's disk cannot be shared, so the store does not invent one).

Reads are lazy ``polars.scan_iceberg`` scans (the read pipeline's filters push into the scan);
appends stream the frame's Arrow batches into one Iceberg commit (atomic: a killed writer leaves
no visible rows); a frame with new columns evolves the table schema first (``union_by_name``).
Concurrent writers are serialised by the catalog's optimistic commits; a commit that loses the
race is retried. Hard deletes are one Iceberg delete (copy-on-write of the matching files).

``pyiceberg`` is the optional extra ``metaxy[iceberg]``; it is imported only when a store is used.
"""

from __future__ import annotations

import os
import random
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from metaxy._secrets import mask_text
from metaxy.errors import BackendError, MetadataSchemaError, StoreCapabilityError
from metaxy.metadata_store.base import MetadataStore, MetadataStoreConfig
from metaxy.metadata_store.contract import AppendSource, StoreCapabilities
from metaxy.metadata_store.types import AccessMode
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import FeatureKey
from metaxy.versioning.polars_executor import POLARS_HASH_ALGORITHMS

from ._iceberg_support import UntranslatableFilter, iceberg_compatible, to_row_filter

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

__all__ = ["IcebergMetadataStore", "IcebergMetadataStoreConfig"]

_EXTRA_HINT = "Hint: install the Iceberg extra: pip install 'metaxy[iceberg]'."
_CATALOG_FILE = "catalog.db"
_MAX_COMMIT_ATTEMPTS = 12
_DELETE_ID = "metaxy.delete-id"
# Table properties of tables the store creates: PyIceberg retries a lost commit race itself
# (re-using the data files already written) this many times, quickly, before the store retries.
_TABLE_PROPERTIES = {
    "commit.retry.num-retries": "20",
    "commit.retry.min-wait-ms": "10",
    "commit.retry.max-wait-ms": "1000",
    # Streamed appends buffer this many (uncompressed Arrow) bytes per data file: bounded memory.
    "write.target-file-size-bytes": str(64 * 1024 * 1024),
}

_T = TypeVar("_T")


class IcebergMetadataStoreConfig(MetadataStoreConfig):
    """``[stores.<name>.config]`` of an Iceberg store (the common store settings plus these)."""

    warehouse: str | Path
    namespace: str = "metaxy"
    catalog_name: str = "metaxy"
    catalog_properties: dict[str, str] | None = None
    auto_create_namespace: bool = True


class IcebergMetadataStore(MetadataStore):
    """Metadata in Apache Iceberg tables, one per feature, in a PyIceberg catalog.

    Versioning runs in Polars (lazy ``scan_iceberg`` scans). Every write is one Iceberg commit:
    atomic, safe with concurrent writers from other processes, and schema-evolving (a later
    write may add columns).

    Args:
        warehouse: Where table files live: a local directory (made absolute) or an object-store
            URI (``s3://bucket/prefix``, ``gs://...``, ``file:///...``).
        namespace: The catalog namespace holding the tables (dots separate levels, where the
            catalog supports nested namespaces; the SQL catalog does not).
        catalog_name: The PyIceberg catalog name (also selects ``~/.pyiceberg.yaml`` entries).
        catalog_properties: PyIceberg catalog properties (``type``, ``uri``, ``s3.endpoint``,
            ``s3.access-key-id``, ``s3.secret-access-key``, ``s3.region`` ...). Optional for a
            local warehouse (a SQLite catalog in ``<warehouse>/catalog.db``); required for an
            object-store warehouse.
        auto_create_namespace: Create the namespace on the first open for writing.
        **kwargs: The common store arguments (``name``, ``hash_algorithm``, ``fallback_stores`` ...).

    Raises:
        ValueError: An empty namespace, or an object-store warehouse without a catalog.

    Example:
        >>> import tempfile
        >>> from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
        >>> store = IcebergMetadataStore(tempfile.mkdtemp())
        >>> with store.open("w"):
        ...     store.list_features()
        []
    """

    capabilities = StoreCapabilities(
        hash_algorithms=POLARS_HASH_ALGORITHMS,
        map_type=True,
        transactions=True,
        concurrency="many_writers",
        location=True,
        creates_tables=True,
    )
    config_class = IcebergMetadataStoreConfig

    def __init__(
        self,
        warehouse: str | os.PathLike[str],
        namespace: str = "metaxy",
        catalog_name: str = "metaxy",
        catalog_properties: Mapping[str, str] | None = None,
        auto_create_namespace: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not namespace or any(not part for part in namespace.split(".")):
            raise ValueError(f"Invalid Iceberg namespace {namespace!r}. Hint: use e.g. 'metaxy' or 'team.metaxy'.")
        raw = os.fspath(warehouse)
        self._is_uri = "://" in raw and not raw.startswith("file://")
        if raw.startswith("file://"):
            raw = raw.removeprefix("file://")
        self.warehouse = raw.rstrip("/") if self._is_uri else os.path.abspath(os.path.expanduser(raw))
        self.namespace = namespace
        self.catalog_name = catalog_name
        self.catalog_properties: dict[str, str] = {k: str(v) for k, v in (catalog_properties or {}).items()}
        self.auto_create_namespace = auto_create_namespace
        if self._is_uri and not self._names_a_catalog():
            raise ValueError(
                f"The object-store warehouse '{self.warehouse}' needs a catalog. Hint: pass catalog_properties "
                "naming one, e.g. {'uri': 'sqlite:////shared/path/catalog.db'} (a SQL catalog) or "
                "{'type': 'rest', 'uri': 'https://...'}, plus the s3.* options of the warehouse."
            )

    def _names_a_catalog(self) -> bool:
        return any(k in self.catalog_properties for k in ("type", "uri", "py-catalog-impl"))

    def _display_target(self) -> str:
        name = f"name={self.name}, " if self.name else ""
        return f"{name}warehouse={self.warehouse}, namespace={self.namespace}"

    # --- catalog and tables ----------------------------------------------------------------------
    def _catalog_properties(self) -> dict[str, str]:
        props = dict(self.catalog_properties)
        props.setdefault("warehouse", self.warehouse if self._is_uri else Path(self.warehouse).as_uri())
        if not self._names_a_catalog():
            props["type"] = "sql"
            props["uri"] = f"sqlite:///{os.path.join(self.warehouse, _CATALOG_FILE)}"
        return props

    @property
    def _ns(self) -> tuple[str, ...]:
        return tuple(self.namespace.split("."))

    def _ident(self, table: str) -> tuple[str, ...]:
        return (*self._ns, table)

    def _catalog(self) -> Catalog:
        catalog: Catalog | None = self._local.backend.get("catalog")
        if catalog is None:
            self._require_open()
            raise AssertionError("unreachable: an open store has a catalog")
        return catalog

    def _open_backend(self, mode: AccessMode) -> None:
        _import_pyiceberg()
        from pyiceberg.catalog import load_catalog

        if not self._names_a_catalog():
            os.makedirs(self.warehouse, exist_ok=True)
        props = self._catalog_properties()
        catalog = self._retrying("open the catalog of", lambda: load_catalog(self.catalog_name, **props))
        self._local.backend["catalog"] = catalog

    def _ensure_namespace(self) -> None:
        """Create the namespace (once per open) unless it exists; a concurrent creator is fine."""
        if not self.auto_create_namespace or self._local.backend.get("namespace_ready"):
            return
        catalog = self._catalog()

        def attempt() -> None:
            try:
                catalog.create_namespace_if_not_exists(self._ns)
            except Exception as exc:
                if not (_is_driver_error(exc) and catalog.namespace_exists(self._ns)):
                    raise

        self._retrying("create the namespace of", attempt)
        self._local.backend["namespace_ready"] = True

    def _close_backend(self) -> None:
        self._local.backend.pop("namespace_ready", None)
        catalog = self._local.backend.pop("catalog", None)
        close = getattr(catalog, "close", None)
        if callable(close):
            close()

    def _table_exists(self, table: str) -> bool:
        return bool(self._retrying("look up a table in", lambda: self._catalog().table_exists(self._ident(table))))

    def _load(self, table: str) -> Table:
        return self._retrying("load a table of", lambda: self._catalog().load_table(self._ident(table)))

    def _try_load(self, table: str) -> Table | None:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self._load(table)
        except BackendError as exc:
            if isinstance(exc.__cause__, NoSuchTableError):
                return None
            raise

    def _list_tables(self) -> list[str]:
        from pyiceberg.exceptions import NoSuchNamespaceError

        def attempt() -> list[str]:
            try:
                return sorted(ident[-1] for ident in self._catalog().list_tables(self._ns))
            except NoSuchNamespaceError:
                return []

        return self._retrying("list the tables of", attempt)

    def _drop(self, table: str) -> None:
        from pyiceberg.exceptions import NoSuchTableError

        def attempt() -> None:
            try:
                self._catalog().purge_table(self._ident(table))
            except NoSuchTableError:
                return

        self._retrying("drop a table of", attempt)

    def _scan(self, table: str) -> pl.LazyFrame:
        return pl.scan_iceberg(self._load(table))

    def _location_uri(self, key: FeatureKey) -> str | None:
        if not self._modes:
            with self.open("r"):
                return self._location_uri(key)
        table = self._try_load(self._table(key))
        return None if table is None else str(table.location())

    def table_identifier(self, feature: Any) -> str:
        """The catalog identifier of a feature's table (``<namespace>.<table name>``).

        Args:
            feature: Feature class, key or key string.
        """
        return ".".join(self._ident(self._table(self._key(feature))))

    # --- writes ----------------------------------------------------------------------------------
    def _storable(self, lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
        # Iceberg has no unsigned, 8/16-bit, categorical or nanosecond types: the schema check
        # before an append compares the types the table will actually hold.
        return iceberg_compatible(lf, stored, table)

    def _append(self, table: str, rows: AppendSource) -> int:
        lf = rows.to_polars()

        def attempt() -> int:
            tbl = self._try_load(table)
            stored = None if tbl is None else pl.scan_iceberg(tbl).collect_schema()
            source = AppendSource(iceberg_compatible(lf, stored, table))
            schema = source.arrow_schema
            with source.reraising():
                try:
                    if tbl is None:
                        self._create_with_rows(table, schema, source)
                        return source.rows
                    if set(schema.names) - set(stored or {}) or _struct_fields_added(stored, source.to_polars()):
                        with tbl.update_schema() as update:
                            update.union_by_name(schema)
                    tbl.append(source.reader(schema=schema))
                except (ValueError, TypeError) as exc:
                    if source.error is not None or type(exc).__module__.startswith("metaxy"):
                        raise
                    raise MetadataSchemaError(
                        mask_text(
                            f"Cannot append to Iceberg table '{'.'.join(self._ident(table))}' of {self.display()}: "
                            f"{exc}. Hint: cast the frame's columns to the stored types."
                        )
                    ) from exc
            return source.rows

        return self._commit(table, "append to", attempt)

    def _create_with_rows(self, table: str, schema: Any, source: AppendSource) -> None:
        """Create the table and append the first rows in one commit: a failing frame leaves no table."""
        from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError

        self._ensure_namespace()
        txn = self._catalog().create_table_transaction(self._ident(table), schema=schema, properties=_TABLE_PROPERTIES)
        txn.append(source.reader(schema=schema))
        try:
            txn.commit_transaction()
        except TableAlreadyExistsError as exc:  # another writer created it first: append again
            raise CommitFailedException(str(exc)) from exc

    def _delete_where(self, table: str, where: FilterExpression | None) -> int:
        from pyiceberg.expressions import AlwaysTrue

        try:
            row_filter = AlwaysTrue() if where is None else to_row_filter(where)
        except UntranslatableFilter as exc:
            raise StoreCapabilityError(
                f"IcebergMetadataStore cannot hard-delete with '{where}': {exc} has no Iceberg row-filter form. "
                "Hint: use comparisons of a column with a literal, IN, BETWEEN, IS NULL, LIKE 'prefix%', "
                "AND/OR/NOT; or soft-delete (soft=True)."
            ) from exc

        def attempt() -> int:
            tbl = self._load(table)
            delete_id = uuid.uuid4().hex
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                tbl.delete(row_filter, snapshot_properties={_DELETE_ID: delete_id})
            return _deleted_rows(self._load(table), delete_id)

        return self._commit(table, "delete from", attempt)

    # --- helpers ---------------------------------------------------------------------------------
    def _commit(self, table: str, action: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` (one Iceberg transaction), retrying when a concurrent commit won."""
        from pyiceberg.exceptions import CommitFailedException

        ident = ".".join(self._ident(table))
        for n in range(1, _MAX_COMMIT_ATTEMPTS + 1):
            try:
                return attempt()
            except CommitFailedException as exc:
                if n == _MAX_COMMIT_ATTEMPTS:
                    raise BackendError(
                        mask_text(
                            f"Could not {action} Iceberg table '{ident}' of {self.display()} after {n} attempts: "
                            f"concurrent writers kept winning ({exc}). Hint: retry the write."
                        )
                    ) from exc
                time.sleep(random.uniform(0, min(0.02 * 2**n, 1.0)))
            except BackendError:
                raise
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise
                raise BackendError(
                    mask_text(
                        f"Could not {action} Iceberg table '{ident}' of {self.display()}: {exc}. "
                        "Hint: check the warehouse and catalog_properties (credentials, endpoint)."
                    )
                ) from exc
        raise AssertionError("unreachable")

    def _retrying(self, action: str, call: Callable[[], _T]) -> _T:
        """A catalog call, retried while a SQLite catalog is locked by another process; driver
        errors become ``BackendError`` (credentials masked)."""
        for n in range(1, _MAX_COMMIT_ATTEMPTS + 1):
            try:
                return call()
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise
                if _is_transient(exc) and n < _MAX_COMMIT_ATTEMPTS:
                    time.sleep(random.uniform(0, min(0.02 * 2**n, 1.0)))
                    continue
                raise BackendError(
                    mask_text(
                        f"Could not {action} {self.display()}: {exc}. "
                        "Hint: check the warehouse and catalog_properties (catalog uri, credentials, endpoint)."
                    )
                ) from exc
        raise AssertionError("unreachable")


# --- module helpers ------------------------------------------------------------------------------


def _import_pyiceberg() -> Any:
    """The ``pyiceberg`` module, or an ImportError naming the extra to install."""
    try:
        import pyiceberg
        import pyiceberg.catalog
    except ImportError as exc:
        raise ImportError(f"IcebergMetadataStore needs the 'pyiceberg' package ({exc}). {_EXTRA_HINT}") from exc
    return pyiceberg


def _is_driver_error(exc: BaseException) -> bool:
    """An error raised by PyIceberg, SQLAlchemy, pyarrow or the OS (not by metaxy or the user)."""
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__
    return module.startswith(("pyiceberg", "sqlalchemy", "pyarrow", "botocore", "requests", "sqlite3"))


def _is_transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or ("already exists" in text and "table iceberg" in text)


def _struct_fields_added(stored: pl.Schema | None, lf: pl.LazyFrame) -> bool:
    """Whether a struct column of ``lf`` has fields the stored struct lacks (nested evolution)."""
    if stored is None:
        return False
    for name, dtype in lf.collect_schema().items():
        old = stored.get(name)
        if isinstance(dtype, pl.Struct) and isinstance(old, pl.Struct):
            if {f.name for f in dtype.fields} - {f.name for f in old.fields}:
                return True
            if _struct_fields_added(pl.Schema({f.name: f.dtype for f in old.fields}), _fields_frame(dtype)):
                return True
    return False


def _fields_frame(dtype: pl.Struct) -> pl.LazyFrame:
    return pl.LazyFrame(schema={f.name: f.dtype for f in dtype.fields})


def _deleted_rows(table: Table, delete_id: str) -> int:
    """Rows removed by the snapshots a delete committed (those tagged with its id)."""
    deleted = 0
    for snapshot in table.metadata.snapshots:
        summary = snapshot.summary
        if summary is None or summary.get(_DELETE_ID) != delete_id:
            continue
        deleted += int(summary.get("deleted-records", 0) or 0) - int(summary.get("added-records", 0) or 0)
    return deleted
