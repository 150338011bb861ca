"""``DeltaMetadataStore``: one Delta Lake table per feature, on a local disk or an object store.

Tables live under ``root_path``: with ``layout="nested"`` the key ``a/b/c`` is the table
``<root>/a/b/c.delta``; with ``layout="flat"`` it is ``<root>/a__b__c.delta`` (the feature's
table name). System tables follow the same layout (``metaxy-system/feature_versions``).

Reads are lazy ``polars.scan_delta`` scans (the read pipeline's filters push into the scan);
appends stream the frame's batches into ``deltalake.write_deltalake`` with schema merging, so
a write is one atomic Delta commit and a killed writer leaves no visible rows. Concurrent
writers are serialised by Delta's optimistic concurrency; commits that lose a race are retried.

``deltalake`` is the optional extra ``metaxy[delta]``; it is imported only when a store is used.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
from polars.datatypes import DataTypeClass

from metaxy.errors import BackendError, MetadataSchemaError, StoreCapabilityError
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import FeatureKey
from metaxy.versioning.polars_executor import POLARS_HASH_ALGORITHMS

from .base import MetadataStore, MetadataStoreConfig
from .contract import AppendSource, StoreCapabilities
from .types import AccessMode

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = ["DeltaLayout", "DeltaMetadataStore", "DeltaMetadataStoreConfig"]

DeltaLayout = Literal["nested", "flat"]

_EXTRA_HINT = "Hint: install the Delta Lake extra: pip install 'metaxy[delta]'."
_TABLE_SUFFIX = ".delta"
_LOG_DIR = "_delta_log"
_MAX_COMMIT_ATTEMPTS = 10
# Arguments of ``write_deltalake`` the store sets itself; users may pass any other one.
_RESERVED_WRITE_OPTIONS = frozenset({"table_or_uri", "data", "mode", "schema_mode", "storage_options", "predicate"})
_WIDER_SIGNED: dict[Any, pl.DataType] = {
    pl.UInt8: pl.Int16(),
    pl.UInt16: pl.Int32(),
    pl.UInt32: pl.Int64(),
    pl.UInt64: pl.Int64(),
}

_T = TypeVar("_T")

# One deltalake call of this process at a time. An append streams the frame's batches from a Python
# generator that deltalake pulls on its runtime threads, each taking the GIL; some deltalake calls
# (``DeltaTable.is_deltatable`` seen) wait on that runtime while holding the GIL. Run beside an
# append, the two wait on each other forever (seen in the threaded-writers trust test: four writers
# and an existence check, every thread parked). Writes of one process are serialised; processes
# still write concurrently (optimistic commits).
_DELTALAKE_CALLS = threading.RLock()


class DeltaMetadataStoreConfig(MetadataStoreConfig):
    """``[stores.<name>.config]`` of a Delta store (the common store settings plus these)."""

    root_path: str | Path
    storage_options: dict[str, str] | None = None
    layout: DeltaLayout = "nested"
    delta_write_options: dict[str, Any] | None = None


class DeltaMetadataStore(MetadataStore):
    """Metadata in Delta Lake tables, one per feature, under ``root_path``.

    Versioning runs in Polars (lazy scans of the Delta tables). Every write is one Delta commit:
    atomic, safe with concurrent writers from other processes, and schema-merging (a later write
    may add columns).

    Args:
        root_path: A local directory or an object-store URI (``s3://bucket/prefix``,
            ``gs://...``, ``az://...``, ``file:///...``). Local paths are made absolute.
        storage_options: Object-store options (credentials, endpoint, region ...) passed to every
            ``deltalake`` / Polars call, e.g. ``{"AWS_REGION": "eu-west-1"}``.
        layout: ``"nested"`` (``<root>/a/b.delta``) or ``"flat"`` (``<root>/a__b.delta``).
        delta_write_options: Extra keyword arguments for ``deltalake.write_deltalake``
            (``writer_properties``, ``target_file_size``, ``configuration`` ...).
        **kwargs: The common store arguments (``name``, ``hash_algorithm``, ``fallback_stores`` ...).

    Raises:
        ValueError: An unknown ``layout``, or ``delta_write_options`` that set an argument the
            store controls (``mode``, ``schema_mode``, ``storage_options`` ...).

    Example:
        >>> import tempfile
        >>> from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
        >>> store = DeltaMetadataStore(tempfile.mkdtemp())
        >>> with store.open("w"):
        ...     store.list_features()
        []
    """

    # Hashes run in Polars; every write is one Delta commit, and concurrent writers from other
    # processes are serialised by Delta's optimistic concurrency.
    capabilities = StoreCapabilities(
        hash_algorithms=POLARS_HASH_ALGORITHMS,
        map_type=True,
        transactions=True,
        concurrency="many_writers",
        location=True,
        creates_tables=True,
        maintenance=True,
    )
    config_class = DeltaMetadataStoreConfig

    def __init__(
        self,
        root_path: str | os.PathLike[str],
        storage_options: Mapping[str, str] | None = None,
        layout: DeltaLayout = "nested",
        delta_write_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if layout not in ("nested", "flat"):
            raise ValueError(f"Unknown Delta table layout {layout!r}. Hint: use layout='nested' or layout='flat'.")
        reserved = sorted(_RESERVED_WRITE_OPTIONS.intersection(delta_write_options or {}))
        if reserved:
            raise ValueError(
                f"delta_write_options may not set {reserved}: the store sets them itself. "
                "Hint: remove them; use delta_write_options for writer_properties, target_file_size, configuration."
            )
        root = os.fspath(root_path)
        self._is_uri = "://" in root
        self.root_path = root.rstrip("/") if self._is_uri else os.path.abspath(os.path.expanduser(root))
        self.storage_options: dict[str, str] | None = dict(storage_options) if storage_options else None
        self.layout: DeltaLayout = layout
        self.delta_write_options: dict[str, Any] = dict(delta_write_options or {})

    def _display_target(self) -> str:
        name = f"name={self.name}, " if self.name else ""
        return f"{name}root_path={self.root_path}, layout={self.layout}"

    # --- table naming ----------------------------------------------------------------------------
    def _table(self, key: FeatureKey) -> str:
        """The table's path relative to the root, without the ``.delta`` suffix."""
        return "/".join(key.parts) if self.layout == "nested" else key.table_name

    def table_uri(self, feature: Any) -> str:
        """Where a feature's Delta table lives (it may not exist yet).

        Args:
            feature: Feature class, key or key string.

        Returns:
            A local path or a URI, depending on ``root_path``.
        """
        return self._uri(self._table(self._key(feature)))

    def _uri(self, table: str) -> str:
        if self._is_uri:
            return f"{self.root_path}/{table}{_TABLE_SUFFIX}"
        return os.path.join(self.root_path, *table.split("/")) + _TABLE_SUFFIX

    def _location_uri(self, key: FeatureKey) -> str | None:
        return self._uri(self._table(key))

    # --- primitives ------------------------------------------------------------------------------
    def _open_backend(self, mode: AccessMode) -> None:
        _import_deltalake()

    def _close_backend(self) -> None:
        return None

    def _table_exists(self, table: str) -> bool:
        deltalake = _import_deltalake()
        try:
            with _DELTALAKE_CALLS:
                return bool(deltalake.DeltaTable.is_deltatable(self._uri(table), storage_options=self.storage_options))
        except (deltalake.exceptions.DeltaError, OSError) as exc:
            raise BackendError(
                f"Cannot check for Delta table '{self._uri(table)}' of {self.display()}: {exc}. "
                "Hint: check root_path and storage_options (credentials, endpoint)."
            ) from exc

    def _load(self, table: str) -> DeltaTable:
        deltalake = _import_deltalake()
        try:
            with _DELTALAKE_CALLS:
                return deltalake.DeltaTable(self._uri(table), storage_options=self.storage_options)
        except deltalake.exceptions.DeltaError as exc:
            raise BackendError(
                f"Cannot open Delta table '{self._uri(table)}' of {self.display()}: {exc}. "
                "Hint: check root_path and storage_options (credentials, endpoint)."
            ) from exc

    def _try_load(self, table: str) -> DeltaTable | None:
        deltalake = _import_deltalake()
        try:
            with _DELTALAKE_CALLS:
                return deltalake.DeltaTable(self._uri(table), storage_options=self.storage_options)
        except deltalake.exceptions.TableNotFoundError:
            return None

    def _scan(self, table: str) -> pl.LazyFrame:
        with _DELTALAKE_CALLS:
            dt = self._load(table)
            if not self._is_uri:
                _check_data_files(dt, self._uri(table))
            return pl.scan_delta(dt)

    def _append(self, table: str, rows: AppendSource) -> int:
        lf = rows.to_polars()

        def attempt() -> int:
            deltalake = _import_deltalake()
            dt = self._try_load(table)
            stored = None if dt is None else pl.scan_delta(dt).collect_schema()
            source = AppendSource(_delta_compatible(lf, stored, table))
            with source.reraising():
                deltalake.write_deltalake(
                    self._uri(table) if dt is None else dt,
                    source.reader(),
                    mode="append",
                    schema_mode="merge",
                    storage_options=self.storage_options if dt is None else None,
                    **self.delta_write_options,
                )
            return source.rows

        return self._commit(table, "append to", attempt)

    def _storable(self, lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
        # Delta has no unsigned, categorical or nanosecond types: the schema check before an
        # append compares the types the table will actually hold.
        return _delta_compatible(lf, stored, table)

    def _delete_where(self, table: str, where: FilterExpression | None) -> int:
        # One native Delta delete (a DataFusion predicate rendered from the filter AST): it rewrites
        # only the files holding matching rows, in one commit that concurrent appends survive.
        predicate = None if where is None else where.to_sql("postgres")

        def attempt() -> int:
            metrics = self._load(table).delete(predicate)
            return int(metrics.get("num_deleted_rows", 0))

        return self._commit(table, "delete from", attempt)

    def _drop(self, table: str) -> None:
        uri = self._uri(table)
        try:
            if not self._is_uri:
                shutil.rmtree(uri)
            else:
                fs, path = _arrow_filesystem(uri, self.storage_options)
                fs.delete_dir(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackendError(
                f"Cannot delete Delta table '{uri}' of {self.display()}: {exc}. "
                "Hint: check the credentials in storage_options allow deleting objects."
            ) from exc

    def _list_tables(self) -> list[str]:
        candidates = self._local_table_dirs() if not self._is_uri else self._object_store_table_dirs()
        return sorted(t for t in set(candidates) if self._table_exists(t))

    # --- maintenance -----------------------------------------------------------------------------
    def _vacuum(self, table: str, *, retention_hours: float, dry_run: bool) -> list[str]:
        # A full Delta vacuum: every file the log does not reference (a killed writer's files, the
        # files deletes replaced), not only those removed by a commit.
        deltalake = _import_deltalake()
        try:
            with _DELTALAKE_CALLS:
                files = list(
                    self._load(table).vacuum(
                        retention_hours=math.ceil(retention_hours),  # never younger than asked
                        dry_run=dry_run,
                        enforce_retention_duration=False,
                        full=True,
                    )
                )
            # A dry run also lists files of removed entries that an earlier vacuum already deleted.
            return self._existing(table, files) if dry_run and files else files
        except (deltalake.exceptions.DeltaError, OSError) as exc:
            raise BackendError(
                f"Could not vacuum Delta table '{self._uri(table)}' of {self.display()}: {exc}. "
                "Hint: check the credentials in storage_options allow listing and deleting objects."
            ) from exc

    # --- helpers ---------------------------------------------------------------------------------
    def _existing(self, table: str, files: list[str]) -> list[str]:
        """The ``files`` (relative to the table) that exist."""
        uri = self._uri(table)
        if not self._is_uri:
            return [f for f in files if os.path.exists(os.path.join(uri, f))]
        fs, base = _arrow_filesystem(uri, self.storage_options)
        infos = fs.get_file_info([f"{base}/{f}" for f in files])
        return [f for f, info in zip(files, infos, strict=True) if info.type != pafs.FileType.NotFound]

    def _commit(self, table: str, action: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` (one Delta transaction), retrying when a concurrent commit won the race."""
        deltalake = _import_deltalake()
        for n in range(1, _MAX_COMMIT_ATTEMPTS + 1):
            try:
                with _DELTALAKE_CALLS:
                    return attempt()
            except deltalake.exceptions.CommitFailedError as exc:
                if n == _MAX_COMMIT_ATTEMPTS:
                    raise BackendError(
                        f"Could not {action} Delta table '{self._uri(table)}' after {n} attempts: concurrent "
                        f"writers kept winning ({exc}). Hint: retry the write, or reduce concurrent schema changes "
                        "and deletes on this feature."
                    ) from exc
                time.sleep(random.uniform(0, min(0.02 * 2**n, 1.0)))
            except deltalake.exceptions.SchemaMismatchError as exc:
                raise MetadataSchemaError(
                    f"Cannot {action} Delta table '{self._uri(table)}': {exc}. "
                    "Hint: cast the frame's columns to the stored types."
                ) from exc
            except deltalake.exceptions.DeltaError as exc:
                raise BackendError(
                    f"Could not {action} Delta table '{self._uri(table)}': {exc}. "
                    "Hint: check root_path, storage_options and delta_write_options."
                ) from exc
        raise AssertionError("unreachable")

    def _local_table_dirs(self) -> Iterator[str]:
        if not os.path.isdir(self.root_path):
            return
        for dirpath, dirnames, _ in os.walk(self.root_path):
            tables = [d for d in dirnames if d.endswith(_TABLE_SUFFIX)]
            for d in tables:
                rel = os.path.relpath(os.path.join(dirpath, d), self.root_path)
                yield PurePosixPath(*rel.split(os.sep)).as_posix()[: -len(_TABLE_SUFFIX)]
            # Never descend into a table; the flat layout has tables at the top level only.
            dirnames[:] = [] if self.layout == "flat" else [d for d in dirnames if d not in tables]

    def _object_store_table_dirs(self) -> Iterator[str]:
        import pyarrow.fs as pafs

        fs, base = _arrow_filesystem(self.root_path, self.storage_options)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        try:
            infos = fs.get_file_info(selector)
        except OSError as exc:
            raise BackendError(
                f"Cannot list Delta tables under '{self.root_path}': {exc}. "
                "Hint: check the credentials in storage_options allow listing objects."
            ) from exc
        for info in infos:
            rel = info.path[len(base) :].strip("/")
            head, sep, _ = rel.partition(f"{_TABLE_SUFFIX}/{_LOG_DIR}/")
            if sep and (self.layout == "nested" or "/" not in head):
                yield head


# --- module helpers ------------------------------------------------------------------------------


def _check_data_files(dt: DeltaTable, uri: str) -> None:
    """Refuse a local table whose log names data files that are gone (deleted by hand, or a vacuum
    with no retention): Polars would fail later, at collect time, with a bare FileNotFoundError.

    Raises:
        BackendError: naming the table and up to three missing files.
    """
    missing = [f for f in dt.file_uris() if not os.path.exists(f.removeprefix("file://"))]
    if missing:
        shown = ", ".join(os.path.basename(f) for f in missing[:3])
        raise BackendError(
            f"Delta table '{uri}' is missing {len(missing)} data file(s) its log references: {shown}. "
            "Hint: restore them from a backup, or remove their entries from the log (deltalake's "
            "DeltaTable.repair()) — the rows in them are lost."
        )


def _import_deltalake() -> Any:
    """The ``deltalake`` module, or an ImportError naming the extra to install."""
    try:
        import deltalake
    except ImportError as exc:
        raise ImportError(f"DeltaMetadataStore needs the 'deltalake' package ({exc}). {_EXTRA_HINT}") from exc
    return deltalake


def _delta_compatible(lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
    """Cast columns to types Delta Lake stores (and reads back) unchanged.

    Null-typed columns take the stored type (String for a new column), categoricals become
    strings, unsigned integers widen to signed ones, datetimes become microseconds (UTC when
    zoned) and arrays become lists.

    Raises:
        MetadataSchemaError: A column type Delta cannot store (Time, Duration, Int128, Object).
    """
    casts: list[pl.Expr] = []
    for name, dtype in lf.collect_schema().items():
        target = _delta_dtype(dtype, stored.get(name) if stored is not None else None, name, table)
        if target != dtype:
            casts.append(pl.col(name).cast(target))
    return lf.with_columns(casts) if casts else lf


def _delta_dtype(
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
    if isinstance(dtype, pl.List | pl.Array):
        inner_stored = stored.inner if isinstance(stored, pl.List) else None
        return pl.List(_delta_dtype(dtype.inner, inner_stored, column, table))
    if isinstance(dtype, pl.Struct):
        stored_fields = {f.name: f.dtype for f in stored.fields} if isinstance(stored, pl.Struct) else {}
        return pl.Struct(
            [pl.Field(f.name, _delta_dtype(f.dtype, stored_fields.get(f.name), column, table)) for f in dtype.fields]
        )
    if isinstance(dtype, pl.Time | pl.Duration | pl.Object) or dtype in (pl.Int128, pl.UInt128):
        raise MetadataSchemaError(
            f"Column '{column}' has type {dtype}, which Delta Lake cannot store (table '{table}'). "
            "Hint: cast it before writing (e.g. Duration to Int64 microseconds, Time to String)."
        )
    return dtype


def _arrow_filesystem(uri: str, storage_options: Mapping[str, str] | None) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for listing / deleting under an object-store URI.

    Credentials are taken from ``storage_options`` for S3 (access key, secret, session token,
    region, endpoint, allow_http) and Azure (account name and key); otherwise from the
    environment, as pyarrow resolves them.

    Raises:
        StoreCapabilityError: pyarrow has no filesystem for the URI's scheme.
    """
    scheme, _, rest = uri.partition("://")
    opts = {k.lower(): v for k, v in (storage_options or {}).items()}
    if scheme in ("s3", "s3a") and opts:
        return pafs.S3FileSystem(**_s3_options(opts)), rest
    if scheme in ("az", "azure", "abfs", "abfss") and "@" not in rest.split("/", 1)[0]:
        account = opts.get("azure_storage_account_name") or opts.get("account_name")
        key = opts.get("azure_storage_account_key") or opts.get("account_key") or opts.get("access_key")
        if account:
            return pafs.AzureFileSystem(account_name=account, account_key=key), rest
    try:
        fs, path = pafs.FileSystem.from_uri(uri.replace("s3a://", "s3://", 1))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise StoreCapabilityError(
            f"Cannot list or delete Delta tables under '{uri}': pyarrow has no filesystem for it ({exc}). "
            "Hint: use a local path or an s3://, gs://, az:// (with azure_storage_account_name) or file:// URI."
        ) from exc
    return fs, path


def _s3_options(opts: Mapping[str, str]) -> dict[str, Any]:
    def first(*names: str) -> str | None:
        return next((opts[n] for n in names if opts.get(n)), None)

    out: dict[str, Any] = {
        "access_key": first("aws_access_key_id", "access_key_id"),
        "secret_key": first("aws_secret_access_key", "secret_access_key"),
        "session_token": first("aws_session_token", "session_token", "token"),
        "region": first("aws_region", "region", "aws_default_region"),
        "endpoint_override": first("aws_endpoint_url", "aws_endpoint", "endpoint_url", "endpoint"),
    }
    if (first("aws_allow_http", "allow_http") or "").lower() == "true":
        out["scheme"] = "http"
    return {k: v for k, v in out.items() if v is not None}
