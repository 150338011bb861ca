"""``metaxy.ext.lancedb.LanceDBMetadataStore``: one Lance table per feature in a LanceDB database.

The database is a local directory or an object-store URI (``s3://bucket/prefix`` ...); object-store
credentials, endpoint and region go in ``storage_options`` (LanceDB's option names, e.g.
``aws_access_key_id``, ``aws_secret_access_key``, ``aws_endpoint``, ``region``, ``allow_http``),
masked wherever the store is shown.

What is lazy: reads are Polars scans of the table's Lance dataset (``pylance``'s
``LanceDataset`` is a pyarrow dataset), so the read pipeline's filters and column selection push
into the Lance scanner and only matching batches are decoded. What is eager: versioning
(``resolve_update``) runs in Polars over those scans; nothing runs inside Lance but the scan.

Appends stream the frame's Arrow batches into one ``Table.add`` call: one new Lance version, all
rows or none; a killed writer leaves no visible rows, only unreferenced data files that
:meth:`~metaxy.metadata_store.base.MetadataStore.vacuum` removes. Deletes are native
``Table.delete`` calls with the filter rendered to SQL. Concurrent writers from several processes
are serialised by Lance's optimistic commits (conflicting commits are retried).

``lancedb`` and ``pylance`` are the optional extra ``metaxy[lancedb]``; they are imported only
when a store is opened.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import polars as pl
from polars.datatypes import DataTypeClass
from polars.io.plugins import register_io_source

from metaxy.errors import BackendError, MetadataSchemaError, MetaxyError, StoreCapabilityError
from metaxy.metadata_store.base import MetadataStore, MetadataStoreConfig
from metaxy.metadata_store.contract import AppendSource, StoreCapabilities
from metaxy.metadata_store.types import AccessMode
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import FeatureKey
from metaxy.versioning.polars_executor import POLARS_HASH_ALGORITHMS

__all__ = ["LanceDBMetadataStore", "LanceDBMetadataStoreConfig"]

_EXTRA_HINT = "Hint: install the LanceDB extra: pip install 'metaxy[lancedb]'."
_MAX_COMMIT_ATTEMPTS = 10
_BATCH_ROWS = 65_536
_CREATED_VERSION = 1  # the version create_table commits: the schema, no rows
_T = TypeVar("_T")

#: glibc ``mallopt`` parameters pinned when a LanceDB store first opens (see
#: :func:`_pin_glibc_malloc`): environment variable -> (``mallopt`` parameter, value)
_GLIBC_MALLOC_PINS = {
    "MALLOC_MMAP_THRESHOLD_": (-3, 256 * 1024),  # M_MMAP_THRESHOLD
    "MALLOC_TRIM_THRESHOLD_": (-1, 1024 * 1024),  # M_TRIM_THRESHOLD
}
_glibc_malloc_pinned: dict[str, int] | None = None


class LanceDBMetadataStoreConfig(MetadataStoreConfig):
    """``[stores.<name>.config]`` of a LanceDB store (the common store settings plus these)."""

    uri: str
    storage_options: dict[str, str] | None = None


class LanceDBMetadataStore(MetadataStore):
    """Metadata in a LanceDB database, one Lance table per feature (named by the feature's table name).

    Args:
        uri: A local directory or an object-store URI (``s3://bucket/prefix``, ``gs://...``,
            ``az://...``). Local paths are made absolute.
        storage_options: Object-store options passed to LanceDB (credentials, ``aws_endpoint``,
            ``region``, ``allow_http`` ...).
        **kwargs: The common store arguments (``name``, ``hash_algorithm``, ``fallback_stores`` ...).

    Example:
        >>> import tempfile
        >>> from metaxy.ext.lancedb import LanceDBMetadataStore
        >>> store = LanceDBMetadataStore(tempfile.mkdtemp())
        >>> with store.open("w"):
        ...     store.list_features()
        []
    """

    # Hashes run in Polars; every append and delete is one Lance commit (a new table version);
    # concurrent writers are serialised by Lance's optimistic commits.
    capabilities = StoreCapabilities(
        hash_algorithms=POLARS_HASH_ALGORITHMS,
        map_type=True,
        transactions=True,
        concurrency="many_writers",
        location=True,
        creates_tables=True,
        maintenance=True,
    )
    config_class = LanceDBMetadataStoreConfig

    def __init__(
        self, uri: str | os.PathLike[str], storage_options: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        raw = os.fspath(uri)
        self._is_uri = "://" in raw
        self.uri = raw.rstrip("/") if self._is_uri else os.path.abspath(os.path.expanduser(raw))
        self.storage_options: dict[str, str] | None = dict(storage_options) if storage_options else None

    def _display_target(self) -> str:
        name = f"name={self.name}, " if self.name else ""
        return f"{name}uri={self.uri}"

    def _getstate_backend(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def _location_uri(self, key: FeatureKey) -> str | None:
        return f"{self.uri}/{self._table(key)}.lance"

    # --- connection ------------------------------------------------------------------------------
    def _open_backend(self, mode: AccessMode) -> None:
        lancedb = _import_lancedb()
        _pin_glibc_malloc()
        try:
            self._local.backend["db"] = lancedb.connect(self.uri, storage_options=self.storage_options)
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(
                f"Cannot connect to LanceDB database {self.display()}: {exc}. "
                "Hint: check uri and storage_options (credentials, endpoint)."
            ) from exc

    def _close_backend(self) -> None:
        self._local.backend.pop("db", None)

    @property
    def _db(self) -> Any:
        return self._local.backend["db"]

    def _open_table(self, table: str) -> Any:
        try:
            return self._db.open_table(table)
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(
                f"Cannot open Lance table '{table}' of {self.display()}: {exc}. "
                "Hint: check uri and storage_options (credentials, endpoint)."
            ) from exc

    # --- primitives ------------------------------------------------------------------------------
    def _list_tables(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        try:
            while True:
                page = self._db.list_tables(page_token=token, limit=1000)
                names += page.tables
                token = page.page_token
                if not token:
                    break
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(
                f"Cannot list the tables of {self.display()}: {exc}. "
                "Hint: check uri and storage_options (credentials allow listing objects)."
            ) from exc
        return sorted(t for t in names if self._table_exists(t))

    def _lance_table(self, table: str) -> Any | None:
        """The table opened, or None when there is none."""
        # Opened, not only listed: a table another writer is creating is listed before it is readable.
        try:
            return self._db.open_table(table)
        except (OSError, ValueError, RuntimeError) as exc:
            if isinstance(exc, ValueError) and "not found" in str(exc):
                return None
            raise BackendError(
                f"Cannot open Lance table '{table}' of {self.display()}: {exc}. "
                "Hint: check uri and storage_options (credentials, endpoint)."
            ) from exc

    def _table_exists(self, table: str) -> bool:
        # An empty version 1 is the table a first append creates before adding its rows (see _append):
        # until that append (or any later one) commits, the feature has no table for metaxy, so a
        # failed first write leaves nothing visible behind. An empty write commits a version too.
        # (drop_feature_metadata still drops such a table: _drop ignores visibility.)
        tbl = self._lance_table(table)
        return tbl is not None and not _bare(tbl)

    def _holds_hidden_table(self, table: str) -> bool:
        return self._lance_table(table) is not None

    def _drop(self, table: str) -> None:
        try:
            self._db.drop_table(table, ignore_missing=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(
                f"Cannot drop Lance table '{table}' of {self.display()}: {exc}. "
                "Hint: check the credentials in storage_options allow deleting objects."
            ) from exc

    def _scan(self, table: str) -> pl.LazyFrame:
        # A Polars IO source over the Lance dataset: the columns a query needs push into Lance's
        # scanner, batches stream, and Polars applies the predicate to each batch (Lance's own
        # filter pushdown cannot take every Polars predicate, e.g. on struct fields). The scan is
        # cached: Polars does not merge two uses of a Python source (a latest-row read splits into
        # two branches), and without the cache each would read the table again.
        dataset = self._open_table(table).to_lance()
        frame = pl.from_arrow(dataset.schema.empty_table())
        assert isinstance(frame, pl.DataFrame)

        def source(
            with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
        ) -> Iterator[pl.DataFrame]:
            left = n_rows
            for batch in dataset.to_batches(columns=with_columns, batch_size=batch_size or _BATCH_ROWS):
                df = pl.from_arrow(batch)
                assert isinstance(df, pl.DataFrame)
                if predicate is not None:
                    df = df.filter(predicate)
                if left is not None:
                    df = df.head(left)
                    left -= df.height
                yield df
                if left is not None and left <= 0:
                    return

        return register_io_source(source, schema=frame.schema, explain_name="lance_scan", explain_detail=table).cache()

    def _table_schema(self, table: str) -> pl.Schema:
        frame = pl.from_arrow(self._open_table(table).schema.empty_table())
        assert isinstance(frame, pl.DataFrame)
        return frame.schema

    def _storable(self, lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
        return _lance_compatible(lf, stored, table)

    def _append(self, table: str, rows: AppendSource) -> int:
        lf = rows.to_polars()

        def attempt() -> int:
            exists = self._lance_table(table) is not None
            stored = self._table_schema(table) if exists else None
            frame = _lance_compatible(lf, stored, table)
            if stored is not None:
                frame = self._align(table, frame, stored)
            source = AppendSource(frame)
            if not exists:
                # An empty table first, then the rows in an ordinary append: concurrent creators
                # race only on the empty first version, never on rows.
                self._db.create_table(table, schema=source.arrow_schema, mode="create")
            with source.reraising():
                self._open_table(table).add(source.reader())
            return source.rows

        return self._commit(table, "append to", attempt)

    def _align(self, table: str, frame: pl.LazyFrame, stored: pl.Schema) -> pl.LazyFrame:
        """Add the frame's new columns to the table (as nulls: a schema-only commit) and the table's
        columns the frame lacks to the frame (as typed nulls), so the append matches the schema."""
        names = frame.collect_schema().names()
        new = [n for n in names if n not in stored]
        if new:
            arrow = pl.DataFrame(schema=frame.select(new).collect_schema()).to_arrow().schema
            self._open_table(table).add_columns(list(arrow))
        missing = [pl.lit(None, dtype=dtype).alias(n) for n, dtype in stored.items() if n not in names]
        order = [*stored.names(), *new]
        return frame.with_columns(missing).select(order) if missing or names != order else frame

    def _delete_where(self, table: str, where: FilterExpression | None) -> int:
        predicate = "true" if where is None else where.to_sql("postgres")

        def attempt() -> int:
            return int(self._open_table(table).delete(predicate).num_deleted_rows)

        return self._commit(table, "delete from", attempt)

    # --- maintenance -----------------------------------------------------------------------------
    def _vacuum(self, table: str, *, retention_hours: float, dry_run: bool) -> list[str]:
        if dry_run:
            raise StoreCapabilityError(
                f"{self.display()} cannot list files before a vacuum: Lance's cleanup has no dry run. "
                "Hint: run the vacuum without --dry-run / dry_run=True."
            )
        tbl = self._open_table(table)
        before = set(_data_files(self, table))
        try:
            # Versions older than the retention go, and so do data files no version references
            # (a killed writer's) once older than the retention.
            # On the Lance dataset: LanceDB's Table.cleanup_old_versions is deprecated for optimize(),
            # which also compacts (rewrites) data files -- a vacuum only deletes what no version needs.
            tbl.to_lance().cleanup_old_versions(older_than=timedelta(hours=retention_hours), delete_unverified=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(
                f"Could not vacuum Lance table '{table}' of {self.display()}: {exc}. "
                "Hint: check the credentials in storage_options allow listing and deleting objects."
            ) from exc
        return sorted(before - set(_data_files(self, table)))

    # --- helpers ---------------------------------------------------------------------------------
    def _commit(self, table: str, action: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` (one Lance commit), retrying when a concurrent commit won the race."""
        for n in range(1, _MAX_COMMIT_ATTEMPTS + 1):
            try:
                return attempt()
            except MetaxyError:
                raise  # metaxy's own validation, or the user's frame failing (AppendSource.reraising)
            except (OSError, ValueError, RuntimeError) as exc:
                text = str(exc).lower()
                if any(t in text for t in ("conflict", "retryable", "already exists", "was not found")):
                    if n < _MAX_COMMIT_ATTEMPTS:
                        time.sleep(random.uniform(0, min(0.02 * 2**n, 1.0)))
                        continue
                    raise BackendError(
                        f"Could not {action} Lance table '{table}' of {self.display()} after {n} attempts: "
                        f"concurrent writers kept winning ({exc}). Hint: retry the write."
                    ) from exc
                if "schema" in text or ("type" in text and "mismatch" in text):
                    raise MetadataSchemaError(
                        f"Cannot {action} Lance table '{table}': {exc}. "
                        "Hint: cast the frame's columns to the stored types."
                    ) from exc
                raise BackendError(
                    f"Could not {action} Lance table '{table}' of {self.display()}: {exc}. "
                    "Hint: check uri and storage_options."
                ) from exc
        raise AssertionError("unreachable")


# --- module helpers ------------------------------------------------------------------------------


def _pin_glibc_malloc() -> dict[str, int]:
    """Pin glibc's mmap and trim thresholds (once per process; glibc only): the knobs pinned.

    Lance's reader allocates its decoded batches with the C allocator from its own threads. glibc
    raises its mmap threshold after each large free (up to 32 MiB), so later batches are served
    from per-thread heaps that keep their pages after Polars has converted and dropped the batches:
    a 1M-row resolve peaked at up to 2.4 GiB, 3x the DuckDB bound (lance-format/lance#7242 describes
    the same growth). Pinned at 256 KiB / 1 MiB, large blocks are mapped and unmapped on free: the
    same resolves peak at 0.8-1.5 GiB, at most 1.9x the bound (benchmarks/README.md). A knob whose
    environment variable is set (or any ``glibc.malloc`` tunable in ``GLIBC_TUNABLES``) is the
    user's and is left alone.
    """
    global _glibc_malloc_pinned
    if _glibc_malloc_pinned is not None:
        return _glibc_malloc_pinned
    import ctypes

    pinned: dict[str, int] = {}
    if _glibc_version() is not None and "glibc.malloc." not in os.environ.get("GLIBC_TUNABLES", ""):
        mallopt = ctypes.CDLL(None).mallopt
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        for env, (param, value) in _GLIBC_MALLOC_PINS.items():
            if env not in os.environ and mallopt(param, value) == 1:
                pinned[env] = value
    _glibc_malloc_pinned = pinned
    return pinned


def _glibc_version() -> str | None:
    """``"glibc 2.36"`` when this process runs on glibc, else None."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None


def _import_lancedb() -> Any:
    """The ``lancedb`` module (with ``pylance``), or an ImportError naming the extra to install."""
    try:
        import lance  # noqa: F401  (Table.to_lance needs it: the lazy scans)
        import lancedb
    except ImportError as exc:
        raise ImportError(
            f"LanceDBMetadataStore needs the 'lancedb' and 'pylance' packages ({exc}). {_EXTRA_HINT}"
        ) from exc
    return lancedb


def _bare(tbl: Any) -> bool:
    """The table is only the empty version ``create_table`` committed (no append has landed)."""
    return bool(tbl.version == _CREATED_VERSION and tbl.count_rows() == 0)


def _data_files(store: LanceDBMetadataStore, table: str) -> list[str]:
    """Every file under the table's ``data/`` directory (committed or not)."""
    import pyarrow.fs as pafs

    base = f"{store.uri}/{table}.lance/data"
    if store._is_uri:
        from metaxy.metadata_store.delta import _arrow_filesystem

        fs, path = _arrow_filesystem(base, store.storage_options)
    else:
        fs, path = pafs.LocalFileSystem(), base
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return [i.path[len(path) :].lstrip("/") for i in infos if i.type == pafs.FileType.File]


def _lance_compatible(lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
    """Cast columns to types Lance stores: Null-typed columns take the stored type (String for a
    new column), categoricals become strings.

    Raises:
        MetadataSchemaError: A column type Lance cannot store (Object).
    """
    casts: list[pl.Expr] = []
    for name, dtype in lf.collect_schema().items():
        target = _lance_dtype(dtype, stored.get(name) if stored is not None else None, name, table)
        if target != dtype:
            casts.append(pl.col(name).cast(target))
    return lf.with_columns(casts) if casts else lf


def _lance_dtype(
    dtype: pl.DataType | DataTypeClass, stored: pl.DataType | DataTypeClass | None, column: str, table: str
) -> pl.DataType:
    dtype = dtype() if isinstance(dtype, type) else dtype
    stored = stored() if isinstance(stored, type) else stored
    if dtype == pl.Null:
        return stored if stored is not None else pl.String()
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    if isinstance(dtype, pl.List | pl.Array):
        inner_stored = stored.inner if isinstance(stored, pl.List | pl.Array) else None
        return type(dtype)(_lance_dtype(dtype.inner, inner_stored, column, table), *_shape(dtype))
    if isinstance(dtype, pl.Struct):
        stored_fields = {f.name: f.dtype for f in stored.fields} if isinstance(stored, pl.Struct) else {}
        return pl.Struct(
            [pl.Field(f.name, _lance_dtype(f.dtype, stored_fields.get(f.name), column, table)) for f in dtype.fields]
        )
    if isinstance(dtype, pl.Object):
        raise MetadataSchemaError(
            f"Column '{column}' has type {dtype}, which Lance cannot store (table '{table}'). "
            "Hint: cast it before writing (e.g. to String or Binary)."
        )
    return dtype


def _shape(dtype: pl.List | pl.Array) -> tuple[Any, ...]:
    return (dtype.shape,) if isinstance(dtype, pl.Array) else ()
