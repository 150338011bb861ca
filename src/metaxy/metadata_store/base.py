"""``MetadataStore``: the store API, written once on top of a handful of backend primitives.

A backend implements the primitives (open/close, table existence, scan, append, delete, drop,
list); ``read``, ``write``, ``resolve_update``, ``delete`` and friends are template methods
here. Backends with a native query engine (SQL) override ``_read_frame`` and
``_resolve_native`` to push the work into the database.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Self, overload

import narwhals as nw
import polars as pl
from pydantic import BaseModel, ConfigDict

from metaxy._secrets import mask_text, register_secrets_in
from metaxy.config._checks import check_store_settings
from metaxy.config._masking import SecretMaskingModel
from metaxy.errors import (
    FeatureNotFoundError,
    HashAlgorithmNotSupportedError,
    MetadataSchemaError,
    PolarsMaterializationWarning,
    ReadOnlyStoreError,
    RootFeatureError,
    StoreCapabilityError,
    StoreNotOpenError,
    SystemDataNotFoundError,
    TableNotFoundError,
    VersioningEngineMismatchError,
)
from metaxy.external_features import auto_sync
from metaxy.frames import FrameLike, like_input
from metaxy.models import constants as c
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import CoercibleToFeatureKey, FeatureKey, coerce_to_feature_key
from metaxy.versioning import polars_executor as px
from metaxy.versioning.hashing import HashAlgorithm, truncation_length
from metaxy.versioning.plan import ResolvePlan, compile_plan
from metaxy.versioning.representation import BY_FIELD_COLUMNS, map_mode, maps_from_structs, structs_from_maps

from ._frames import (
    FilterLike,
    WriteContext,
    apply_filters,
    check_columns,
    coerce_filters,
    normalize_write,
    to_polars_lazy,
)
from .types import AccessMode, Increment, LazyIncrement

__all__ = ["MetadataStore", "MetadataStoreConfig", "VersioningEngine"]

VersioningEngine = Literal["auto", "native", "polars"]
FiltersByFeature = Mapping[CoercibleToFeatureKey, FilterLike | Sequence[FilterLike]]


class MetadataStoreConfig(SecretMaskingModel):
    """Constructor settings common to every store (``stores.<name>.config`` in metaxy.toml).

    ``repr`` and JSON dumps mask credentials; a failed validation raises ``ConfigValidationError``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    hash_algorithm: HashAlgorithm | None = None
    versioning_engine: VersioningEngine = "auto"
    fallback_stores: list[str] = []
    auto_create_tables: bool | None = None
    materialization_id: str | None = None


class MetadataStore(ABC):
    """Append-only, per-feature metadata tables with merge-on-read and incremental resolution.

    Use as a context manager: ``with store:`` opens for reading, ``with store.open("w"):`` for
    writing. Opens nest; the innermost mode is in effect.
    """

    # --- capabilities (class attributes; core code asks these, never isinstance) -----------------
    default_hash_algorithm: ClassVar[HashAlgorithm] = HashAlgorithm.MD5
    supported_hash_algorithms: ClassVar[frozenset[HashAlgorithm]] = px.POLARS_HASH_ALGORITHMS
    native_engine: ClassVar[Literal["polars", "sql"]] = "polars"
    always_creates_tables: ClassVar[bool] = True
    supports_map_datatype: ClassVar[bool] = True
    config_class: ClassVar[type[MetadataStoreConfig]] = MetadataStoreConfig

    def __init__(
        self,
        *,
        name: str | None = None,
        hash_algorithm: HashAlgorithm | str | None = None,
        versioning_engine: VersioningEngine = "auto",
        fallback_stores: Sequence[MetadataStore | str] | None = None,
        auto_create_tables: bool | None = None,
        materialization_id: str | None = None,
    ) -> None:
        check_store_settings(type(self).__name__, versioning_engine=versioning_engine)
        self.name = name
        self.hash_algorithm = HashAlgorithm(hash_algorithm) if hash_algorithm else self.default_hash_algorithm
        self.versioning_engine: VersioningEngine = versioning_engine
        self._fallback_specs: list[MetadataStore | str] = list(fallback_stores or [])
        self._fallbacks: list[MetadataStore] | None = None
        self._auto_create_tables = auto_create_tables
        self.materialization_id = materialization_id
        self._local = _ThreadState()
        self._clock = threading.Lock()
        self._last_now: datetime | None = None

    # --- construction from config ----------------------------------------------------------------
    @classmethod
    def config_model(cls) -> type[MetadataStoreConfig]:
        return cls.config_class

    @classmethod
    def from_config(cls, config: MetadataStoreConfig | Mapping[str, Any], **kwargs: Any) -> MetadataStore:
        if not isinstance(config, BaseModel):
            config = cls.config_model().model_validate(config)
        return cls(**{**config.model_dump(exclude_unset=True), **kwargs})

    @property
    def qualified_class_name(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def display(self) -> str:
        """A short human description, e.g. ``InMemoryMetadataStore(name=dev)``; credentials masked."""
        return mask_text(f"{type(self).__name__}({self._display_target()})")

    def _display_target(self) -> str:
        return f"name={self.name}" if self.name else ""

    def __repr__(self) -> str:
        return self.display()

    def native_implementation(self) -> str:
        return self.native_engine

    @property
    def auto_create_tables(self) -> bool:
        if self._auto_create_tables is not None:
            return self._auto_create_tables
        from metaxy.config import MetaxyConfig

        return bool(MetaxyConfig.current_or_default().auto_create_tables)

    # --- per-thread open state -------------------------------------------------------------------
    # A store object may be shared by threads: each thread opens it for itself (its own
    # connection / cursor, its own mode stack); a thread that did not open it gets
    # StoreNotOpenError. Backends keep their per-thread handles in ``self._local.backend``.
    @property
    def _modes(self) -> list[AccessMode]:
        return self._local.modes

    @property
    def _entered(self) -> list[contextlib.AbstractContextManager[MetadataStore]]:
        return self._local.entered

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_local", None)
        state.pop("_clock", None)
        state["_fallbacks"] = None
        return self._getstate_backend(state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = _ThreadState()
        self._clock = threading.Lock()

    def _getstate_backend(self, state: dict[str, Any]) -> dict[str, Any]:
        """Drop unpicklable backend handles from ``state`` (connections)."""
        return state

    # --- backend primitives ----------------------------------------------------------------------
    @abstractmethod
    def _open_backend(self, mode: AccessMode) -> None:
        """Connect (called by the outermost ``open``)."""

    @abstractmethod
    def _close_backend(self) -> None:
        """Disconnect (called when the outermost ``open`` exits)."""

    @abstractmethod
    def _table_exists(self, table: str) -> bool: ...

    @abstractmethod
    def _scan(self, table: str) -> pl.LazyFrame:
        """All raw rows of an existing table, lazily."""

    @abstractmethod
    def _append(self, table: str, lf: pl.LazyFrame) -> int:
        """Append rows atomically, creating the table if needed; returns the row count."""

    @abstractmethod
    def _delete_where(self, table: str, predicate: pl.Expr | None) -> int:
        """Physically delete matching rows (all rows for ``None``); returns the count deleted."""

    @abstractmethod
    def _drop(self, table: str) -> None: ...

    @abstractmethod
    def _list_tables(self) -> list[str]: ...

    # --- lifecycle -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def open(self, mode: AccessMode = "r") -> Iterator[Self]:
        """Open the store (re-entrant). The connection is made by the outermost open.

        Raises:
            HashAlgorithmNotSupportedError: the store cannot compute its hash algorithm.
        """
        if mode not in ("r", "w"):
            raise ValueError(f"Unknown access mode {mode!r}. Hint: use 'r' or 'w'.")
        outermost = not self._modes
        if outermost:
            # The public settings' credentials, so that a driver quoting one back gets it masked.
            register_secrets_in({k: v for k, v in vars(self).items() if not k.startswith("_")})
            self._check_hash_algorithm()
            self._check_capabilities()
            self._open_backend(mode)
        self._modes.append(mode)
        try:
            yield self
        finally:
            self._modes.pop()
            if outermost:
                self._close_backend()

    def __enter__(self) -> Self:
        """``with store:`` opens for reading, or keeps the current mode when already open."""
        cm = self.open(self._modes[-1] if self._modes else "r")
        entered = cm.__enter__()
        self._entered.append(cm)
        return entered

    def __exit__(self, *exc: Any) -> None:
        self._entered.pop().__exit__(*exc)

    @property
    def is_open(self) -> bool:
        return bool(self._modes)

    @property
    def mode(self) -> AccessMode | None:
        return self._modes[-1] if self._modes else None

    def _check_hash_algorithm(self) -> None:
        if self.hash_algorithm not in self.supported_hash_algorithms:
            raise HashAlgorithmNotSupportedError(
                f"{type(self).__name__} cannot compute hash algorithm '{self.hash_algorithm.value}'. "
                f"Supported: {sorted(a.value for a in self.supported_hash_algorithms)}. "
                "Hint: set hash_algorithm to one of them (metaxy never downloads extensions)."
            )

    def _check_capabilities(self) -> None:
        from metaxy.config import MetaxyConfig

        if MetaxyConfig.current_or_default().enable_map_datatype and not self.supports_map_datatype:
            raise StoreCapabilityError(
                f"{type(self).__name__} does not support enable_map_datatype (Map-typed *_by_field columns). "
                "Hint: set enable_map_datatype = false; Struct columns give identical versions."
            )

    def _require_open(self) -> None:
        if not self._modes:
            raise StoreNotOpenError(
                f"{self.display()} must be opened before use (in this thread: each thread opens a store for "
                "itself). Hint: `with store:` (read) or `with store.open('w'):` (write)."
            )

    @property
    def read_only(self) -> bool:
        """Whether the store is configured read-only (writes raise ``ReadOnlyStoreError``)."""
        return False

    def _require_write(self) -> None:
        self._require_open()
        if self._modes[-1] != "w":
            raise StoreNotOpenError(
                f"{self.display()} is open in read mode. Hint: wrap the write in `with store.open('w'):`."
            )
        if self.read_only:
            raise ReadOnlyStoreError(
                f"{self.display()} is configured read-only; nothing was written. Hint: write through a "
                "store configured without read-only access, or remove that setting."
            )

    def _now(self) -> datetime:
        """The transaction time: UTC, microseconds, strictly increasing per store object."""
        with self._clock:
            now = datetime.now(UTC)
            if self._last_now is not None and now <= self._last_now:
                now = self._last_now + timedelta(microseconds=1)
            self._last_now = now
            return now

    # --- fallback stores -------------------------------------------------------------------------
    @property
    def fallback_stores(self) -> list[MetadataStore]:
        """Fallback stores, resolved (by name through the config) on first access."""
        if self._fallbacks is None:
            resolved: list[MetadataStore] = []
            for spec in self._fallback_specs:
                if isinstance(spec, MetadataStore):
                    resolved.append(spec)
                    continue
                from metaxy.config import MetaxyConfig

                if not MetaxyConfig.is_set():
                    raise ValueError(
                        f"Fallback store '{spec}' of {self.display()} is a name, but no MetaxyConfig provided. "
                        "Hint: call metaxy.init() / MetaxyConfig.load(), or pass store objects."
                    )
                resolved.append(MetaxyConfig.get().get_store(spec))
            for fb in resolved:
                if fb.hash_algorithm != self.hash_algorithm:
                    raise ValueError(
                        f"Fallback store {fb.display()} uses hash_algorithm '{fb.hash_algorithm.value}' but "
                        f"{self.display()} uses '{self.hash_algorithm.value}'. Hint: every store in a fallback "
                        "chain must use the same hash_algorithm."
                    )
            self._fallbacks = resolved
        return self._fallbacks

    # --- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _key(feature: CoercibleToFeatureKey) -> FeatureKey:
        return coerce_to_feature_key(feature)

    @staticmethod
    def _is_system(key: FeatureKey) -> bool:
        return bool(key.parts) and key.parts[0] == c.SYSTEM_KEY_PREFIX

    def _table(self, key: FeatureKey) -> str:
        return key.table_name

    def _graph(self) -> FeatureGraph:
        return current_graph()

    def _hash_length(self) -> int:
        return truncation_length()

    # --- read ------------------------------------------------------------------------------------
    @overload
    def read(
        self,
        feature: CoercibleToFeatureKey,
        *,
        feature_version: str | None = None,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        columns: Sequence[str] | None = None,
        allow_fallback: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
        include_soft_deleted: bool = False,
        with_store_info: Literal[False] = False,
    ) -> nw.LazyFrame[Any]: ...
    @overload
    def read(
        self,
        feature: CoercibleToFeatureKey,
        *,
        feature_version: str | None = None,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        columns: Sequence[str] | None = None,
        allow_fallback: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
        include_soft_deleted: bool = False,
        with_store_info: Literal[True],
    ) -> tuple[nw.LazyFrame[Any], MetadataStore]: ...
    @overload
    def read(
        self,
        feature: CoercibleToFeatureKey,
        *,
        feature_version: str | None = None,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        columns: Sequence[str] | None = None,
        allow_fallback: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
        include_soft_deleted: bool = False,
        with_store_info: bool = False,
    ) -> nw.LazyFrame[Any] | tuple[nw.LazyFrame[Any], MetadataStore]: ...
    def read(
        self,
        feature: CoercibleToFeatureKey,
        *,
        feature_version: str | None = None,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        columns: Sequence[str] | None = None,
        allow_fallback: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
        include_soft_deleted: bool = False,
        with_store_info: bool = False,
    ) -> nw.LazyFrame[Any] | tuple[nw.LazyFrame[Any], MetadataStore]:
        """Read a feature's metadata lazily: current feature version, latest row per sample.

        Args:
            feature: feature class, key or key string.
            feature_version: read this version instead (needs ``with_feature_history=True``).
            filters: SQL strings or narwhals/Polars expressions, applied after de-duplication.
            columns: return exactly these columns.
            allow_fallback: look in fallback stores when this store lacks the feature.
            with_feature_history: all feature versions instead of the current one.
            with_sample_history: every row instead of the latest per sample.
            include_soft_deleted: keep rows whose latest state is a soft delete.
            with_store_info: return ``(frame, store_that_had_it)``.

        Returns:
            A narwhals ``LazyFrame`` (or the tuple with ``with_store_info``).

        Raises:
            StoreNotOpenError: the store is not open.
            FeatureNotFoundError: no table for the feature here nor in any fallback store.
            SystemDataNotFoundError: a system table that was never pushed.
            ValueError: ``feature_version`` without ``with_feature_history``.
        """
        self._require_open()
        key = self._key(feature)
        if not self._is_system(key):
            auto_sync(self)  # external features of other projects (config.sync)
        if feature_version is not None and not with_feature_history:
            raise ValueError(
                f"read('{key}', feature_version={feature_version!r}) needs with_feature_history=True. "
                "Hint: pass with_feature_history=True to read another feature version."
            )
        parsed = coerce_filters(filters)
        if self._is_system(key):
            frame = self._read_system(key, parsed, columns)
            return (frame, self) if with_store_info else frame
        store = self._find_store(key, allow_fallback=allow_fallback)
        version = None if with_feature_history else self._graph().get_feature_version(key)
        if with_feature_history and feature_version is not None:
            version = feature_version
        with store.open("r") if store is not self else contextlib.nullcontext():
            available = store._column_names(store._table(key))
            check_columns(f"'{key}' in {store.display()}", available, filters=parsed, columns=columns)
            frame = store._read_frame(
                key,
                feature_version=version,
                id_columns=self._graph().get_feature_definition(key).id_columns,
                with_sample_history=with_sample_history,
                include_soft_deleted=include_soft_deleted,
                filters=parsed,
                columns=list(columns) if columns is not None else None,
            )
            if store is not self:
                frame = self._detach(frame)
        return (frame, store) if with_store_info else frame

    def _detach(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """A frame read from another (now closing) store, made independent of its connection."""
        native = frame.to_native()
        if isinstance(native, pl.LazyFrame):
            return frame
        return nw.from_native(frame.collect().to_polars().lazy())

    def _read_frame(
        self,
        key: FeatureKey,
        *,
        feature_version: str | None,
        id_columns: Sequence[str],
        with_sample_history: bool,
        include_soft_deleted: bool,
        filters: Sequence[FilterLike],
        columns: list[str] | None,
    ) -> nw.LazyFrame[Any]:
        """The read pipeline (Polars): version filter → latest per id → hide deleted → filters → columns."""
        lf = self._scan(self._table(key))
        if feature_version is not None:
            lf = lf.filter(pl.col(c.FEATURE_VERSION) == feature_version)
        if not with_sample_history:
            lf = px.latest_rows(lf, id_columns)
        if not include_soft_deleted:
            lf = lf.filter(pl.col(c.DELETED_AT).is_null())
        lf = apply_filters(lf, filters)
        if columns is not None:
            lf = lf.select(columns)
        return nw.from_native(lf)

    def _read_system(self, key: FeatureKey, filters: Sequence[FilterLike], columns: Sequence[str] | None) -> Any:
        table = self._table(key)
        if not self._table_exists(table):
            raise SystemDataNotFoundError(
                f"System table '{key}' does not exist in {self.display()}. Hint: Invoke `metaxy push` "
                "(or SystemTableStorage(store).push_graph_snapshot()) first.",
                keys=[key],
            )
        check_columns(f"system table '{key}'", self._column_names(table), filters=filters, columns=columns)
        lf = apply_filters(self._scan(table), filters)
        return nw.from_native(lf.select(list(columns)) if columns is not None else lf)

    def _find_store(self, key: FeatureKey, *, allow_fallback: bool) -> MetadataStore:
        if self._table_exists(self._table(key)):
            return self
        if allow_fallback:
            for fb in self.fallback_stores:
                with fb.open("r"):
                    try:
                        return fb._find_store(key, allow_fallback=True)
                    except FeatureNotFoundError:
                        continue
        where = [self.display(), *(fb.display() for fb in (self.fallback_stores if allow_fallback else []))]
        raise FeatureNotFoundError(
            f"Feature '{key}' has no metadata in {', '.join(where)}. Hint: write it first (or resolve and "
            "write its upstream features), or add a fallback store that has it.",
            keys=[key],
        )

    def has_feature(self, feature: CoercibleToFeatureKey, *, check_fallback: bool = False) -> bool:
        """Whether the store (or, with ``check_fallback``, a fallback store) has the feature's table."""
        self._require_open()
        try:
            self._find_store(self._key(feature), allow_fallback=check_fallback)
        except FeatureNotFoundError:
            return False
        return True

    def has_feature_anywhere(self, feature: CoercibleToFeatureKey) -> bool:
        """Whether this store or one of its fallbacks has the feature (opens stores as needed)."""
        with self.open("r"):
            return self.has_feature(feature, check_fallback=True)

    def find_store_for_feature(self, feature: CoercibleToFeatureKey) -> MetadataStore:
        self._require_open()
        return self._find_store(self._key(feature), allow_fallback=True)

    def get_store_metadata(self, feature: CoercibleToFeatureKey) -> dict[str, Any]:
        """This store (``name``, ``display``) and, under ``resolved_from``, the info of the store
        that holds the feature (this one or a fallback, see :meth:`get_store_info`).

        Raises:
            FeatureNotFoundError: neither this store nor a fallback has the feature.
        """
        store = self.find_store_for_feature(feature)
        return {"name": self.name, "display": self.display(), "resolved_from": store.get_store_info()}

    def get_store_info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.qualified_class_name,
            "display": self.display(),
            "hash_algorithm": self.hash_algorithm.value,
        }

    # --- write -----------------------------------------------------------------------------------
    def write(
        self,
        feature: CoercibleToFeatureKey,
        df: FrameLike,
        materialization_id: str | None = None,
        preserve_feature_version: bool = False,
    ) -> int:
        """Append rows to a feature's table, stamping the system columns (spec §5.3).

        Args:
            feature: feature class, key or key string.
            df: any narwhals-compatible frame (Polars, pandas, PyArrow; eager or lazy).
            materialization_id: recorded on every row (defaults to the store's).
            preserve_feature_version: keep the frame's feature/project versions (rebase, copy).

        Returns:
            The number of rows written.

        Raises:
            StoreNotOpenError: not open for writing.
            MetadataSchemaError: missing id / provenance columns or wrong dtypes; nothing is written.
            TableNotFoundError: the table is missing and the store may not create it.
        """
        self._require_write()
        key = self._key(feature)
        lf = normalize_write(to_polars_lazy(df), self._write_context(key, materialization_id, preserve_feature_version))
        return self._append_checked(key, lf)

    def _append_checked(self, key: FeatureKey, lf: pl.LazyFrame) -> int:
        table = self._table(key)
        if not self._table_exists(table):
            if not (self.always_creates_tables or self.auto_create_tables):
                raise TableNotFoundError(
                    f"Table '{table}' for feature '{key}' does not exist in {self.display()}. Hint: create it, "
                    "or set auto_create_tables = true (store config or metaxy.toml).",
                    keys=[key],
                )
            if not self.always_creates_tables:
                warnings.warn(f"Creating table '{table}' for feature '{key}' in {self.display()}.", stacklevel=3)
        else:
            self._check_schema_compatible(key, lf)
        return self._append(table, lf)

    def _table_schema(self, table: str) -> pl.Schema:
        """The Polars schema of an existing table."""
        return self._scan(table).collect_schema()

    def _column_names(self, table: str) -> list[str]:
        """The column names of an existing table."""
        return self._table_schema(table).names()

    def _check_schema_compatible(self, key: FeatureKey, lf: pl.LazyFrame) -> None:
        existing = self._table_schema(self._table(key))
        incoming = lf.collect_schema()
        stored_by_case = {n.casefold(): n for n in existing.names()}
        for name in incoming.names():
            stored = stored_by_case.get(name.casefold())
            if stored is not None and stored != name:
                raise MetadataSchemaError(
                    f"Writing '{key}': column '{name}' differs only by case from the stored column '{stored}'. "
                    f"Hint: rename it to '{stored}' (column names are case-sensitive, and SQL stores could not "
                    "keep both)."
                )
        clashes = {
            n: (str(existing[n]), str(dt))
            for n, dt in incoming.items()
            if n in existing
            and existing[n] != dt
            and dt != pl.Null
            and existing[n] != pl.Null
            and not (n in c.SYSTEM_COLUMNS and isinstance(dt, pl.Struct))
        }
        if clashes:
            raise MetadataSchemaError(
                f"Writing '{key}': column types differ from the stored table: "
                + ", ".join(f"{n} stored {a}, got {b}" for n, (a, b) in clashes.items())
                + ". Hint: cast the columns to the stored types."
            )

    def _write_context(
        self, key: FeatureKey, materialization_id: str | None, preserve_feature_version: bool, **kw: Any
    ) -> WriteContext:
        graph = self._graph()
        plan = compile_plan(graph, key)
        defn = graph.get_feature_definition(key)
        return WriteContext(
            feature=key.to_string(),
            id_columns=plan.id_columns,
            field_struct_keys=plan.field_struct_keys,
            is_root=plan.is_root,
            feature_version=plan.feature_version,
            project_version=graph.get_project_version(defn.project),
            materialization_id=materialization_id or self.materialization_id,
            now=self._now(),
            algorithm=self.hash_algorithm,
            length=self._hash_length(),
            preserve_feature_version=preserve_feature_version,
            map_mode=self._map_mode(),
            **kw,
        )

    def write_multi(self, frames: Mapping[Any, Any], materialization_id: str | None = None) -> dict[FeatureKey, int]:
        """Write several features; dependents first (reverse topological order).

        All frames are validated before the first one is written.
        """
        self._require_write()
        by_key = {self._key(k): v for k, v in frames.items()}
        order = self._graph().topological_sort_features(by_key, descending=True)
        prepared = {
            k: normalize_write(to_polars_lazy(by_key[k]), self._write_context(k, materialization_id, False))
            for k in order
        }
        return {k: self._append_checked(k, prepared[k]) for k in order}

    # --- resolve ---------------------------------------------------------------------------------
    @overload
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: Literal[False] = False,
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> Increment: ...
    @overload
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: Literal[True],
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> LazyIncrement: ...
    @overload
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: bool = False,
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> Increment | LazyIncrement: ...
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: bool = False,
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> Increment | LazyIncrement:
        """Which samples of ``feature`` are new, stale or orphaned (spec §3.10, §5.4).

        Args:
            feature: feature class, key or key string.
            samples: expected rows with ``metaxy_provenance_by_field`` (required for root features;
                for others, replaces loading the upstream).
            filters: ``{feature: [filter, ...]}``; upstream entries filter that upstream's read,
                the target's entry filters stored rows and samples.
            global_filters: applied to the target and to every upstream read.
            target_filters: applied to the target only (stored rows and samples).
            lazy: return a :class:`LazyIncrement` (with ``input``) instead of collecting.
            versioning_engine: ``"auto"``, ``"native"`` or ``"polars"`` (default: the store's).
            skip_comparison: report every expected sample as new.
            staleness_predicates: stored rows matching any of these are stale.

        Raises:
            RootFeatureError: root feature without ``samples``.
            FeatureNotFoundError: an upstream has no metadata anywhere.
            VersioningEngineMismatchError: ``"native"`` was required but frames are foreign.
        """
        self._require_open()
        auto_sync(self)  # external features of other projects (config.sync)
        key = self._key(feature)
        graph = self._graph()
        graph.get_feature_definition(key)
        plan = compile_plan(graph, key)
        if plan.is_root and samples is None:
            raise RootFeatureError(
                f"'{key}' is a root feature (no upstream); resolve_update needs samples=. Hint: pass a frame "
                f"of the expected samples with '{c.PROVENANCE_BY_FIELD}' (one entry per field)."
            )
        by_key = {self._key(k): coerce_filters(v) for k, v in (filters or {}).items()}
        glob = coerce_filters(global_filters)
        target = [*by_key.get(key, []), *glob, *coerce_filters(target_filters)]
        predicates = coerce_filters(staleness_predicates)
        self._check_resolve_columns(plan, samples, by_key, glob, target, predicates)
        engine = versioning_engine or self.versioning_engine
        request = _ResolveRequest(plan, samples, by_key, glob, target, predicates, skip_comparison)
        if engine != "polars" and self.native_engine != "polars":
            native = self._resolve_native(request, strict=engine == "native", lazy=lazy)
            if native is not None:
                return native
        result = self._resolve_polars(request, warn=engine == "auto")
        return result if lazy else result.collect()

    def _check_resolve_columns(
        self,
        plan: ResolvePlan,
        samples: Any,
        by_key: Mapping[FeatureKey, Sequence[FilterLike]],
        global_filters: Sequence[FilterLike],
        target: Sequence[FilterLike],
        predicates: Sequence[FilterLike],
    ) -> None:
        """Every filter of a resolve names columns its data has (ColumnNotFoundError otherwise)."""
        for dep in plan.deps:
            filters = [*by_key.get(dep.feature, []), *global_filters]
            if filters:
                store = self._find_store(dep.feature, allow_fallback=True)
                with store.open("r") if store is not self else contextlib.nullcontext():
                    available = store._column_names(store._table(dep.feature))
                check_columns(f"upstream '{dep.feature}' in {store.display()}", available, filters=filters)
        if not (target or predicates):
            return
        table = self._table(plan.feature)
        if self._table_exists(table):
            stored = self._column_names(table)
            check_columns(f"'{plan.feature}' in {self.display()}", stored, filters=[*target, *predicates])
        if samples is not None and target:
            names = [*to_polars_lazy(samples).collect_schema().names(), *sorted(c.SYSTEM_COLUMNS)]
            check_columns(f"the samples of '{plan.feature}'", names, filters=target)

    def _resolve_native(
        self, request: _ResolveRequest, *, strict: bool, lazy: bool
    ) -> LazyIncrement | Increment | None:
        """Run the resolve inside the backend (lazy or collected); ``None`` to fall back to Polars."""
        if strict:
            raise VersioningEngineMismatchError(
                f"{type(self).__name__} has no native versioning engine. Hint: use versioning_engine='polars'."
            )
        return None

    def _expected_polars(self, request: _ResolveRequest, *, warn: bool) -> pl.LazyFrame:
        """The joined upstream with computed provenance (Polars), from the store's upstream reads."""
        plan, algo, length = request.plan, self.hash_algorithm, self._hash_length()
        prepared = [
            px.prepare_upstream(dep, self._upstream_polars(dep.feature, request, warn=warn), algo, length)
            for dep in plan.deps
        ]
        return px.with_provenance(plan, px.join_upstreams(plan, prepared), algo, length)

    def _resolve_polars(self, request: _ResolveRequest, *, warn: bool) -> LazyIncrement:
        plan = request.plan
        if request.samples is not None:
            expected = self._samples_frame(plan, request.samples, request.target_filters)
            upstream_input = None
        else:
            expected = self._expected_polars(request, warn=warn)
            upstream_input = expected
        current = self._current_polars(plan, request.target_filters)
        predicate_columns: list[str] = []
        if current is not None and request.staleness_predicates:
            current, predicate_columns = _with_predicate_columns(current, request.staleness_predicates)
        res = px.resolve(
            plan, expected, current, predicate_columns=predicate_columns, skip_comparison=request.skip_comparison
        )
        present = self._present

        def collect() -> Increment:
            new, stale, orphaned = res.collect()
            frames = (present(plan, f.lazy()).collect() for f in (new, stale, orphaned))
            return Increment(*(nw.from_native(f, eager_only=True) for f in frames))

        return LazyIncrement(
            nw.from_native(present(plan, res.new)),
            nw.from_native(present(plan, res.stale)),
            nw.from_native(present(plan, res.orphaned)),
            nw.from_native(present(plan, upstream_input)) if upstream_input is not None else None,
            collector=collect,
        )

    def _map_mode(self) -> bool:
        return self.supports_map_datatype and map_mode()

    def _present(self, plan: ResolvePlan, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Computed frames in the store's representation of the ``*_by_field`` columns."""
        if not self._map_mode():
            return lf
        return maps_from_structs(lf, {col: plan.field_struct_keys for col in BY_FIELD_COLUMNS})

    def _upstream_polars(self, key: FeatureKey, request: _ResolveRequest, *, warn: bool) -> pl.LazyFrame:
        frame = self.read(key, filters=[*request.filters_by_key.get(key, []), *request.global_filters])
        native = frame.to_native()
        if isinstance(native, pl.LazyFrame):
            return native
        if warn and self.native_engine == "polars":
            warnings.warn(
                f"Upstream '{key}' was materialised to Polars for the resolve.",
                PolarsMaterializationWarning,
                stacklevel=4,
            )
        return frame.collect().to_polars().lazy()

    def _current_polars(self, plan: ResolvePlan, target_filters: Sequence[FilterLike]) -> pl.LazyFrame | None:
        if not self._table_exists(self._table(plan.feature)):
            return None
        frame = self._read_frame(
            plan.feature,
            feature_version=plan.feature_version,
            id_columns=plan.id_columns,
            with_sample_history=False,
            include_soft_deleted=False,
            filters=target_filters,
            columns=None,
        )
        native = frame.to_native()
        return native if isinstance(native, pl.LazyFrame) else frame.collect().to_polars().lazy()

    def _samples_frame(self, plan: ResolvePlan, samples: Any, target_filters: Sequence[FilterLike]) -> pl.LazyFrame:
        lf = to_polars_lazy(samples)
        names = lf.collect_schema().names()
        if c.PROVENANCE_BY_FIELD not in names:
            raise MetadataSchemaError(
                f"samples for '{plan.feature}' have no '{c.PROVENANCE_BY_FIELD}' column. Available: {names}. "
                f"Hint: add a struct column with one string per field: {list(plan.field_struct_keys)}."
            )
        ctx = WriteContext(
            feature=plan.feature.to_string(),
            id_columns=plan.id_columns,
            field_struct_keys=plan.field_struct_keys,
            is_root=True,
            feature_version=plan.feature_version,
            project_version="",
            materialization_id=None,
            now=datetime.now(UTC),
            algorithm=self.hash_algorithm,
            length=self._hash_length(),
            map_mode=self._map_mode(),
        )
        normalized = normalize_write(lf.drop([n for n in names if n == c.PROVENANCE]), ctx)
        _refuse_duplicate_ids(normalized, plan)
        keep = [n for n in normalized.collect_schema().names() if n not in _LIFECYCLE]
        return apply_filters(normalized.select(keep), target_filters)

    def compute_provenance(self, feature: CoercibleToFeatureKey, df: FrameLike) -> Any:
        """Add the versioning columns to a user-joined upstream frame; returns the frame type given.

        ``df`` must hold ``metaxy_data_version_by_field__<upstream suffix>`` for every dependency.

        Raises:
            ValueError: the required upstream columns are missing.
        """
        key = self._key(feature)
        plan = compile_plan(self._graph(), key)
        lf = to_polars_lazy(df)
        names = lf.collect_schema().names()
        required = [d.data_version_by_field for d in plan.deps]
        missing = [col for col in required if col not in names]
        if missing:
            raise ValueError(
                f"compute_provenance('{key}') is missing required upstream columns {missing}. "
                "Hint: rename each upstream's metaxy_data_version_by_field with its suffix before joining."
            )
        for dep in plan.deps:
            for col in dep.versioning_columns:
                if col not in names:
                    lf = lf.with_columns(pl.lit(None, pl.String).alias(col))
        for dep in plan.deps:
            keys = dep.field_struct_keys
            lf = structs_from_maps(lf, {dep.data_version_by_field: keys, dep.provenance_by_field: keys})
        out = px.with_provenance(plan, lf, self.hash_algorithm, self._hash_length())
        return like_input(df, self._present(plan, out))

    def calculate_input_progress(self, lazy_increment: LazyIncrement, feature: CoercibleToFeatureKey) -> float | None:
        """Percent of distinct input units (join keys) of ``lazy_increment.input`` already processed,
        i.e. not in ``new``; ``None`` when there is no input (samples were given) or it is empty."""
        if lazy_increment.input is None:
            return None
        keys = list(compile_plan(self._graph(), self._key(feature)).join_keys)
        total = len(lazy_increment.input.select(keys).unique().collect())
        if total == 0:
            return None
        pending = len(lazy_increment.new.select(keys).unique().collect())
        return 100.0 * (total - pending) / total

    def rebase(self, feature: CoercibleToFeatureKey, df: FrameLike, *, to_feature_version: str | None = None) -> Any:
        """Re-stamp stored rows onto another feature version of the same feature.

        User and data-version columns are kept (a data version equal to the old provenance is
        cleared, so it follows the new provenance on write); provenance is recomputed from the
        upstream under the target graph (the current one, or the pushed snapshot holding
        ``to_feature_version``). Write the result with ``preserve_feature_version=True``.

        Raises:
            ValueError: ``feature`` is a root feature, or ``to_feature_version`` was never pushed.
        """
        self._require_open()
        key = self._key(feature)
        graph = self._rebase_graph(key, to_feature_version)
        with graph.use():
            plan = compile_plan(graph, key)
            if plan.is_root:
                raise ValueError(
                    f"Cannot rebase root feature '{key}': its provenance comes from its samples. "
                    "Hint: re-write the root samples instead."
                )
            expected = self._expected_polars(_ResolveRequest(plan, None, {}, [], [], [], False), warn=True)
            project_version = graph.get_project_version(graph.get_feature_definition(key).project)
        lf = to_polars_lazy(df)
        names = lf.collect_schema().names()
        same = pl.col(c.DATA_VERSION) == pl.col(c.PROVENANCE)
        if c.DATA_VERSION_BY_FIELD in names and c.DATA_VERSION in names:
            lf = lf.with_columns(
                pl.when(same).then(None).otherwise(pl.col(c.DATA_VERSION_BY_FIELD)).alias(c.DATA_VERSION_BY_FIELD),
                pl.when(same).then(None).otherwise(pl.col(c.DATA_VERSION)).alias(c.DATA_VERSION),
            )
        keys = list(plan.join_keys)
        lf = lf.drop([col for col in (c.PROVENANCE_BY_FIELD, c.PROVENANCE) if col in names])
        fresh = expected.select(*keys, c.PROVENANCE_BY_FIELD, c.PROVENANCE).unique(subset=keys, keep="first")
        out = lf.join(self._present(plan, fresh), on=keys, how="inner").with_columns(
            pl.lit(plan.feature_version).alias(c.FEATURE_VERSION), pl.lit(project_version).alias(c.PROJECT_VERSION)
        )
        return nw.from_native(out.collect())

    def _rebase_graph(self, key: FeatureKey, to_feature_version: str | None) -> FeatureGraph:
        current = self._graph()
        if to_feature_version is None or to_feature_version == current.get_feature_version(key):
            return current
        from .system import SystemTableStorage

        storage = SystemTableStorage(self)
        rows = storage._rows().filter(
            (pl.col("feature_key") == key.to_string()) & (pl.col(c.FEATURE_VERSION) == to_feature_version)
        )
        if rows.height == 0:
            raise ValueError(
                f"Feature version '{to_feature_version}' of '{key}' not found in system storage of {self.display()}. "
                "Hint: push the graph that defines it (`metaxy push`) before rebasing onto it."
            )
        latest = rows.sort("recorded_at").row(-1, named=True)
        return storage.load_graph_from_snapshot(latest[c.PROJECT_VERSION], project=latest["project"])

    # --- deletes and maintenance -----------------------------------------------------------------
    def delete(
        self,
        feature: CoercibleToFeatureKey,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        *,
        soft: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
    ) -> int:
        """Soft-delete (append markers) or hard-delete (physically remove) matching rows.

        Args:
            feature: feature class, key or key string.
            filters: which rows; ``None`` means every row. An empty list is refused.
            soft: append deletion markers (default) instead of removing rows physically.
            with_feature_history: all feature versions instead of the current one.
            with_sample_history: (soft) mark every stored row, not only the latest per sample.

        Returns:
            The number of markers written (soft) or rows removed (hard).

        Raises:
            StoreNotOpenError: not open for writing.
            MetadataSchemaError: ``filters=[]`` (ambiguous: pass ``None`` to delete everything).
            ColumnNotFoundError: a filter names a column the feature's table lacks.
            FeatureNotFoundError: (hard) the feature has no table in this store.
        """
        self._require_write()
        key = self._key(feature)
        parsed = coerce_filters(filters)
        if filters is not None and not parsed:
            raise MetadataSchemaError(
                f"delete('{key}', filters={filters!r}) got an empty filter list. Hint: pass filters=None "
                "to delete every row of the feature (explicitly), or give at least one condition."
            )
        if soft:
            frame = self.read(
                key,
                filters=parsed,
                with_feature_history=with_feature_history,
                with_sample_history=with_sample_history,
            )
            lf = to_polars_lazy(frame)
            ctx = self._write_context(key, None, False, keep_timestamps=True)
            marked = lf.with_columns(pl.lit(ctx.now, pl.Datetime("us", "UTC")).alias(c.DELETED_AT))
            return self._append_checked(key, normalize_write(marked, ctx))
        table = self._table(key)
        if not self._table_exists(table):
            raise FeatureNotFoundError(f"Feature '{key}' has no table in {self.display()}.", keys=[key])
        check_columns(f"'{key}' in {self.display()}", self._column_names(table), filters=parsed)
        version = None if with_feature_history else self._graph().get_feature_version(key)
        return self._hard_delete(table, parsed, version)

    def _hard_delete(self, table: str, filters: Sequence[FilterLike], feature_version: str | None) -> int:
        """Physically delete the rows matching every filter (of ``feature_version``, if given)."""
        predicate = self._hard_delete_predicate(table, filters)
        if feature_version is not None:
            version = pl.col(c.FEATURE_VERSION) == feature_version
            predicate = version if predicate is None else predicate & version
        return self._delete_where(table, predicate)

    def _hard_delete_predicate(self, table: str, filters: Sequence[FilterLike]) -> pl.Expr | None:
        """One Polars predicate for the raw table; narwhals expressions become a row mask."""
        if not any(isinstance(f, nw.Expr) for f in filters):
            return _combine(filters)
        df = self._scan(table).collect()
        mask = nw.from_native(df).select(
            nw.all_horizontal(*[_as_nw(f) for f in filters], ignore_nulls=False).alias("m")
        )
        return pl.lit(mask.to_native().get_column("m").fill_null(False))

    def drop_feature_metadata(self, feature: CoercibleToFeatureKey) -> None:
        """Drop a feature's table and all its rows."""
        self._require_write()
        table = self._table(self._key(feature))
        if self._table_exists(table):
            self._drop(table)

    def list_features(self) -> list[FeatureKey]:
        """Keys of the features that have a table in this store (system tables excluded)."""
        self._require_open()
        known = {k.table_name: k for k in self._graph().feature_definitions_by_key}
        return sorted((known[t] for t in self._list_tables() if t in known), key=str)

    def copy_metadata(
        self,
        from_store: MetadataStore,
        features: Sequence[CoercibleToFeatureKey] | None = None,
        *,
        filters: Mapping[str, FilterLike | Sequence[FilterLike]] | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        with_feature_history: bool = True,
        with_sample_history: bool = False,
    ) -> dict[str, int]:
        """Copy features' rows from another store, keeping versions and timestamps."""
        self._require_write()
        copied = rows = 0
        with from_store.open("r"):
            keys = [self._key(f) for f in features] if features is not None else from_store.list_features()
            by_key = {self._key(k): coerce_filters(v) for k, v in (filters or {}).items()}
            for key in keys:
                if not from_store.has_feature(key):
                    continue
                frame = from_store.read(
                    key,
                    filters=[*by_key.get(key, []), *coerce_filters(global_filters)],
                    with_feature_history=with_feature_history,
                    with_sample_history=with_sample_history,
                    include_soft_deleted=True,
                    allow_fallback=False,
                )
                df = frame.collect().to_polars()
                if df.height == 0:
                    continue
                ctx = self._write_context(key, None, True, keep_timestamps=True)
                rows += self._append_checked(key, normalize_write(df.lazy(), ctx))
                copied += 1
        return {"features_copied": copied, "rows_copied": rows}


class _ThreadState(threading.local):
    """A store's open state in one thread."""

    def __init__(self) -> None:
        self.modes: list[AccessMode] = []
        self.entered: list[contextlib.AbstractContextManager[MetadataStore]] = []
        self.backend: dict[str, Any] = {}


class _ResolveRequest:
    """The normalised arguments of one ``resolve_update`` call."""

    __slots__ = (
        "filters_by_key",
        "global_filters",
        "plan",
        "samples",
        "skip_comparison",
        "staleness_predicates",
        "target_filters",
    )

    def __init__(
        self,
        plan: ResolvePlan,
        samples: Any,
        filters_by_key: dict[FeatureKey, list[FilterLike]],
        global_filters: list[FilterLike],
        target_filters: list[FilterLike],
        staleness_predicates: list[FilterLike],
        skip_comparison: bool,
    ) -> None:
        self.plan = plan
        self.samples = samples
        self.filters_by_key = filters_by_key
        self.global_filters = global_filters
        self.target_filters = target_filters
        self.staleness_predicates = staleness_predicates
        self.skip_comparison = skip_comparison


_LIFECYCLE = frozenset(
    {c.FEATURE_VERSION, c.PROJECT_VERSION, c.CREATED_AT, c.UPDATED_AT, c.DELETED_AT, c.MATERIALIZATION_ID}
)


def _refuse_duplicate_ids(lf: pl.LazyFrame, plan: ResolvePlan) -> None:
    """``samples=`` must name each sample once: two provenances for one sample are ambiguous, and
    the sample would be listed (and recomputed) twice.

    Raises:
        MetadataSchemaError: naming up to five duplicated ids.
    """
    ids = list(plan.id_columns)
    dupes = lf.group_by(ids).agg(pl.len().alias("__n")).filter(pl.col("__n") > 1).collect()
    if dupes.height:
        shown = ", ".join(str(tuple(r) if len(r) > 1 else r[0]) for r in dupes.select(ids).head(5).rows())
        raise MetadataSchemaError(
            f"samples for '{plan.feature}' list {dupes.height} sample(s) more than once (by {ids}): {shown}. "
            "Hint: give each sample once, e.g. samples.unique(subset=id_columns, keep='last')."
        )


def _with_predicate_columns(lf: pl.LazyFrame, predicates: Sequence[FilterLike]) -> tuple[pl.LazyFrame, list[str]]:
    """Evaluate staleness predicates (SQL strings, Polars or narwhals expressions) as boolean columns."""
    from metaxy.models.filter_expression import FilterExpression

    names: list[str] = []
    for i, p in enumerate(predicates):
        name = f"__metaxy_predicate_{i}"
        names.append(name)
        if isinstance(p, str):
            p = FilterExpression.parse(p)
        if isinstance(p, FilterExpression):
            lf = lf.with_columns(p.to_polars().alias(name))
        elif isinstance(p, pl.Expr):
            lf = lf.with_columns(p.alias(name))
        else:
            lf = nw.from_native(lf).with_columns(p.alias(name)).to_native()
    return lf, names


def _as_nw(f: FilterLike) -> nw.Expr:
    from metaxy.models.filter_expression import FilterExpression

    if isinstance(f, FilterExpression):
        return f.to_narwhals()
    if isinstance(f, nw.Expr):
        return f
    raise TypeError(
        f"Cannot combine a {type(f).__name__} filter with narwhals filters. Hint: use SQL strings or narwhals."
    )


def _combine(filters: Sequence[FilterLike]) -> pl.Expr | None:
    from metaxy.models.filter_expression import FilterExpression

    out: pl.Expr | None = None
    for f in filters:
        if isinstance(f, FilterExpression):
            e = f.to_polars()
        elif isinstance(f, pl.Expr):
            e = f
        else:
            raise TypeError(
                f"Hard delete takes SQL-string or Polars filters, got {type(f).__name__}. "
                "Hint: pass the condition as a SQL string."
            )
        out = e if out is None else out & e
    return out


# Documented aliases hosted here: see metaxy._compat.ALIASES.
from metaxy._compat import alias_hooks  # noqa: E402

__getattr__, __dir__ = alias_hooks(__name__)
