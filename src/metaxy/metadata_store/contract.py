"""The backend contract: the few primitives a store backend implements, and its capabilities as data.

A backend is a subclass of :class:`~metaxy.metadata_store.base.MetadataStore` that implements the
abstract primitives of :class:`StoreBackend` and declares a :class:`StoreCapabilities`. Everything
a user calls (``read``, ``write``, ``resolve_update``, ``delete``, fallbacks, system tables,
history) is written once above these primitives; a backend overrides no public method
(``tests/metadata_store/test_contract.py`` checks it).

Frames cross the contract as Arrow or narwhals (a backend may also answer with a Polars frame):
:data:`ScanFrame` is what a scan may return, and the base adapts it. Filters cross it as the
filter AST (:class:`~metaxy.models.filter_expression.FilterExpression`), parsed once from the
user's SQL strings or narwhals expressions -- never as engine objects.

This module imports nothing from the store layer above it: system tables and other clients are
typed against :class:`StoreBackend`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

import narwhals as nw
import polars as pl
import pyarrow as pa

from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import FeatureKey
from metaxy.versioning.hashing import HashAlgorithm

if TYPE_CHECKING:
    from metaxy.versioning.plan import ResolvePlan

    from .types import AccessMode, Increment, LazyIncrement

__all__ = [
    "AppendSource",
    "Concurrency",
    "ReadRequest",
    "ResolveRequest",
    "ScanFrame",
    "StoreBackend",
    "StoreCapabilities",
    "VersioningSettings",
    "scan_to_polars",
]

Concurrency = Literal["single_writer", "many_writers"]

#: What a backend's scan may return; the base adapts each to a lazy frame.
ScanFrame: TypeAlias = (
    pa.Table | pa.RecordBatchReader | nw.LazyFrame[Any] | nw.DataFrame[Any] | pl.LazyFrame | pl.DataFrame
)


@dataclass(frozen=True)
class StoreCapabilities:
    """What a backend can do, declared as data (``MetadataStore.capabilities``); core code and
    integrations ask these, never ``isinstance`` on a concrete store.

    Attributes:
        hash_algorithms: the row-level hash algorithms the backend computes natively. A store
            refuses any other at open (``HashAlgorithmNotSupportedError``), never downloads one.
        default_hash_algorithm: the algorithm used when none is configured.
        native_resolve: ``resolve_update`` can run inside the engine (``_resolve_native``).
        map_type: the backend stores ``Map(String, String)`` columns (``enable_map_datatype``).
        transactions: writes are transactional (an append is all rows or none, a delete likewise).
        concurrency: ``"single_writer"`` (one writing process at a time, e.g. a DuckDB file) or
            ``"many_writers"`` (concurrent writers from several processes, e.g. Delta commits).
        content_digest: the store computes Dagster's content digest of frames it returned inside
            its engine (``MetadataStore.content_sums``); otherwise it is computed in Polars.
        location: the store can name where a feature's rows live (``MetadataStore.location_uri``).
        creates_tables: an append creates a missing table without ``auto_create_tables``.
        maintenance: the store can remove files no committed version references (left by a
            killed writer, or replaced by deletes) with ``MetadataStore.vacuum`` / ``mx metadata
            vacuum``; the backend implements :meth:`StoreBackend._vacuum`.
    """

    hash_algorithms: frozenset[HashAlgorithm]
    default_hash_algorithm: HashAlgorithm = HashAlgorithm.MD5
    native_resolve: bool = False
    map_type: bool = True
    transactions: bool = True
    concurrency: Concurrency = "single_writer"
    content_digest: bool = False
    location: bool = False
    creates_tables: bool = True
    maintenance: bool = False


@dataclass(frozen=True)
class VersioningSettings:
    """The versioning settings a store runs with, fixed when it opens and passed explicitly to the
    executors (no executor reads the global configuration).

    Attributes:
        hash_algorithm: the row-level algorithm for provenance hashes.
        hash_length: the truncation length of every hash.
        map_mode: store and return the ``*_by_field`` columns as ``Map(String, String)``.
    """

    hash_algorithm: HashAlgorithm
    hash_length: int
    map_mode: bool


@dataclass(frozen=True)
class ReadRequest:
    """One read of a feature table, handed to :meth:`StoreBackend._read_frame`.

    The pipeline is: keep ``feature_version`` (all versions when None) → latest row per
    ``id_columns`` (unless ``with_sample_history``) → hide soft-deleted rows (unless
    ``include_soft_deleted``) → ``filters`` (all must hold) → ``columns``.
    """

    key: FeatureKey
    table: str
    feature_version: str | None
    id_columns: tuple[str, ...]
    with_sample_history: bool
    include_soft_deleted: bool
    filters: tuple[FilterExpression, ...]
    columns: tuple[str, ...] | None


@dataclass(frozen=True)
class ResolveRequest:
    """The normalised arguments of one ``resolve_update`` call, for :meth:`StoreBackend._resolve_native`.

    Filters are parsed filter ASTs except where a user passed a Polars expression that has no
    SQL form: a native resolver that meets one gives up (returns None) and Polars runs the plan.
    """

    plan: ResolvePlan
    samples: Any
    filters_by_key: dict[FeatureKey, list[Any]]
    global_filters: list[Any]
    target_filters: list[Any]
    staleness_predicates: list[Any]
    skip_comparison: bool
    settings: VersioningSettings


class AppendSource:
    """The normalised rows of one append: a lazy frame a backend streams as Arrow batches
    (:meth:`reader`) or takes as Polars (:meth:`to_polars`), counting the rows as they pass.

    An exception raised while producing the rows (a user's lazy frame, metaxy's write validation)
    is kept; wrap the engine call in :meth:`reraising` so the caller gets it as itself rather than
    the engine's generic error.
    """

    def __init__(self, lf: pl.LazyFrame, *, now: datetime | None = None) -> None:
        self._lf = lf
        self.now = now
        self.rows = 0
        self.error: BaseException | None = None

    @property
    def arrow_schema(self) -> pa.Schema:
        return pl.DataFrame(schema=self._lf.collect_schema()).to_arrow().schema

    def to_polars(self) -> pl.LazyFrame:
        """The rows as a Polars lazy frame (the backend counts rows itself, see :attr:`rows`)."""
        return self._lf

    def reader(self, chunk_rows: int | None = None, *, schema: pa.Schema | None = None) -> pa.RecordBatchReader:
        """The rows as an Arrow stream of batches (never collected whole)."""
        target = schema if schema is not None else self.arrow_schema
        return pa.RecordBatchReader.from_batches(target, self._batches(chunk_rows, target))

    def _batches(self, chunk_rows: int | None, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        try:
            kwargs: dict[str, Any] = {"chunk_size": chunk_rows} if chunk_rows else {}
            for chunk in self._lf.collect_batches(**kwargs):
                self.rows += chunk.height
                yield from chunk.to_arrow().cast(schema).to_batches()
        except BaseException as exc:
            self.error = exc
            raise

    @contextlib.contextmanager
    def reraising(self) -> Iterator[None]:
        try:
            yield
        except BaseException as exc:
            if self.error is not None and self.error is not exc:
                raise self.error from None
            raise


class StoreBackend(ABC):
    """The primitives a backend implements (abstract) and the optional ones it may provide.

    Tables are named by :meth:`_table` (a string the backend understands: a table name, a path
    relative to a root). Every primitive is called with the store open in the calling thread;
    per-thread handles (connections, cursors) go in ``self._local.backend``.
    """

    capabilities: ClassVar[StoreCapabilities]

    # --- required --------------------------------------------------------------------------------
    @abstractmethod
    def _open_backend(self, mode: AccessMode) -> None:
        """Connect (called by the outermost ``open`` of a thread)."""

    @abstractmethod
    def _close_backend(self) -> None:
        """Disconnect (called when the outermost ``open`` of a thread exits)."""

    @abstractmethod
    def _list_tables(self) -> list[str]:
        """Names of every table in the store (system tables included)."""

    @abstractmethod
    def _table_exists(self, table: str) -> bool: ...

    def _holds_hidden_table(self, table: str) -> bool:
        """A table metaxy does not show yet is there (LanceDB: the empty table a first append creates
        before its rows; it keeps that append's columns when the append fails). Default: never."""
        return False

    @abstractmethod
    def _drop(self, table: str) -> None:
        """Drop a table and its rows (no error when it does not exist)."""

    @abstractmethod
    def _scan(self, table: str) -> ScanFrame:
        """All raw rows of an existing table, lazily where the engine allows."""

    @abstractmethod
    def _append(self, table: str, rows: AppendSource) -> int:
        """Append rows **atomically** (all or none, whatever other writers do), creating the table
        if needed (a later append may add columns); returns the number of rows written."""

    @abstractmethod
    def _delete_where(self, table: str, where: FilterExpression | None) -> int:
        """Physically delete the rows where ``where`` holds (every row for None), atomically;
        returns the number deleted. ``where`` is the parsed filter AST: render it for the engine
        (``where.to_sql(dialect)``, ``where.to_polars()``), never evaluate it row by row in Python."""

    # --- optional (defaults work for any backend) --------------------------------------------------
    def _table(self, key: FeatureKey) -> str:
        """The table holding a feature's rows (default: ``key.table_name``)."""
        return key.table_name

    def _table_schema(self, table: str) -> pl.Schema:
        """The schema of an existing table, as Polars types (default: from the scan)."""
        return scan_to_polars(self._scan(table)).collect_schema()

    def _column_names(self, table: str) -> list[str]:
        """The column names of an existing table (default: from :meth:`_table_schema`)."""
        return self._table_schema(table).names()

    def _storable(self, lf: pl.LazyFrame, stored: pl.Schema | None, table: str) -> pl.LazyFrame:
        """``lf`` cast to the types the backend will store (default: unchanged). The schema check
        before an append compares these against the stored table."""
        return lf

    def _read_frame(self, request: ReadRequest) -> nw.LazyFrame[Any] | None:
        """Run a read inside the engine; None lets the base run it in Polars over :meth:`_scan`."""
        return None

    def _resolve_native(self, request: ResolveRequest, *, strict: bool, lazy: bool) -> LazyIncrement | Increment | None:
        """Run ``resolve_update`` inside the engine (``capabilities.native_resolve``); None to fall
        back to the Polars executor. ``strict`` (``versioning_engine="native"``) asks for a
        ``VersioningEngineMismatchError`` instead of a fallback."""
        return None

    def _content_sums(
        self, frame: nw.LazyFrame[Any], columns: Sequence[tuple[str, str]]
    ) -> tuple[int, int, int] | None:
        """``(rows, low, high)`` of Dagster's content digest computed in the engine, for a frame this
        store returned (``capabilities.content_digest``); None when the frame is not the engine's."""
        return None

    def _location_uri(self, key: FeatureKey) -> str | None:
        """Where a feature's rows live (a path or URI, ``capabilities.location``); None if unknown."""
        return None

    def _vacuum(self, table: str, *, retention_hours: float, dry_run: bool) -> list[str]:
        """Delete the files of an existing table that no committed version references and that are
        older than ``retention_hours`` (``capabilities.maintenance``); with ``dry_run`` only list
        them. Returns the files (paths or URIs) deleted or deletable."""
        raise NotImplementedError(f"{type(self).__name__} declares no maintenance capability")

    def _is_read_only(self) -> bool:
        """Whether the store's settings make it read-only (writes raise ``ReadOnlyStoreError``)."""
        return False


def scan_to_polars(frame: ScanFrame) -> pl.LazyFrame:
    """Adapt what a scan returned to a Polars lazy frame."""
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    if isinstance(frame, pa.RecordBatchReader):
        return pl.from_arrow(frame.read_all()).lazy()  # type: ignore[union-attr]
    if isinstance(frame, pa.Table):
        return pl.from_arrow(frame).lazy()  # type: ignore[union-attr]
    nw_frame = frame if isinstance(frame, nw.LazyFrame | nw.DataFrame) else nw.from_native(frame)
    native = nw_frame.to_native()
    if isinstance(native, pl.LazyFrame | pl.DataFrame):
        return native.lazy()
    if isinstance(nw_frame, nw.LazyFrame):
        return nw_frame.collect().to_polars().lazy()
    return nw_frame.to_polars().lazy()
