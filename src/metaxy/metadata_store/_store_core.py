"""The store's core: construction, per-thread open state, versioning settings, fallbacks and helpers.

``MetadataStore`` (``base.py``) is this core plus the read, write and resolve layers, each in its
own module, all written once over the backend contract (``contract.py``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import narwhals as nw
from pydantic import BaseModel, ConfigDict

from metaxy._secrets import mask_text, register_secrets_in
from metaxy.config._checks import check_store_settings
from metaxy.config._masking import SecretMaskingModel
from metaxy.errors import HashAlgorithmNotSupportedError, ReadOnlyStoreError, StoreCapabilityError, StoreNotOpenError
from metaxy.models import constants as c
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import CoercibleToFeatureKey, FeatureKey, coerce_to_feature_key
from metaxy.models.settings import current_settings
from metaxy.versioning import polars_executor as px
from metaxy.versioning.hashing import HashAlgorithm

from .contract import StoreBackend, StoreCapabilities, VersioningSettings
from .types import AccessMode

if TYPE_CHECKING:
    from .base import MetadataStore

__all__ = ["MetadataStoreConfig", "StoreCore", "VersioningEngine"]

VersioningEngine = Literal["auto", "native", "polars"]


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


class StoreCore(StoreBackend):
    """Construction, lifecycle, settings and helpers shared by every store (see ``MetadataStore``)."""

    capabilities = StoreCapabilities(hash_algorithms=px.POLARS_HASH_ALGORITHMS)
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
        self.hash_algorithm = (
            HashAlgorithm(hash_algorithm) if hash_algorithm else self.capabilities.default_hash_algorithm
        )
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
    def from_config(cls, config: MetadataStoreConfig | Mapping[str, Any], **kwargs: Any) -> Self:
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

    # --- capabilities (derived from ``capabilities``; core code asks these, never isinstance) ----
    @property
    def default_hash_algorithm(self) -> HashAlgorithm:
        return self.capabilities.default_hash_algorithm

    @property
    def supported_hash_algorithms(self) -> frozenset[HashAlgorithm]:
        """The hash algorithms this store computes natively (``capabilities.hash_algorithms``)."""
        return self.capabilities.hash_algorithms

    @property
    def supports_map_datatype(self) -> bool:
        return self.capabilities.map_type

    @property
    def native_engine(self) -> Literal["polars", "sql"]:
        return "sql" if self.capabilities.native_resolve else "polars"

    @property
    def always_creates_tables(self) -> bool:
        return self.capabilities.creates_tables

    @property
    def auto_create_tables(self) -> bool:
        if self._auto_create_tables is not None:
            return self._auto_create_tables
        return current_settings().auto_create_tables

    def location_uri(self, feature: CoercibleToFeatureKey) -> str | None:
        """Where a feature's rows live (a path or URI, credentials masked); None when the store
        cannot say (``capabilities.location``)."""
        uri = self._location_uri(self._key(feature)) if self.capabilities.location else None
        return mask_text(uri) if uri is not None else None

    def content_sums(self, frame: Any, columns: Sequence[tuple[str, str]]) -> tuple[int, int, int] | None:
        """Dagster's content digest sums ``(rows, low, high)`` of a frame this store returned,
        computed inside the engine (``capabilities.content_digest``); None when it cannot.

        ``columns`` are ``(name, kind)`` pairs, kind one of ``"date"``, ``"datetime"``, ``"text"``.
        """
        if not self.capabilities.content_digest:
            return None
        return self._content_sums(nw.from_native(frame), columns)

    # --- per-thread open state -------------------------------------------------------------------
    # A store object may be shared by threads: each thread opens it for itself (its own
    # connection / cursor, its own mode stack); a thread that did not open it gets
    # StoreNotOpenError. Backends keep their per-thread handles in ``self._local.backend``.
    @property
    def _modes(self) -> list[AccessMode]:
        return self._local.modes

    @property
    def _entered(self) -> list[contextlib.AbstractContextManager[Any]]:
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
            settings = self._resolve_settings()
            self._open_backend(mode)
            self._local.settings = settings
        self._modes.append(mode)
        try:
            yield self
        finally:
            self._modes.pop()
            if outermost:
                self._local.settings = None
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

    def _resolve_settings(self) -> VersioningSettings:
        """The versioning settings of this open session, from the store and the active configuration.

        Raises:
            StoreCapabilityError: Map columns are asked for and the backend has no Map type.
        """
        ambient = current_settings()
        if ambient.enable_map_datatype and not self.capabilities.map_type:
            raise StoreCapabilityError(
                f"{type(self).__name__} does not support enable_map_datatype (Map-typed *_by_field columns). "
                "Hint: set enable_map_datatype = false; Struct columns give identical versions."
            )
        return VersioningSettings(
            hash_algorithm=self.hash_algorithm,
            hash_length=ambient.hash_truncation_length,
            map_mode=self.capabilities.map_type and ambient.enable_map_datatype,
        )

    @property
    def settings(self) -> VersioningSettings:
        """The versioning settings in effect: fixed by the open session of this thread (or, when
        the store is not open, those an open would fix now)."""
        fixed: VersioningSettings | None = self._local.settings
        return fixed if fixed is not None else self._resolve_settings()

    def _require_open(self) -> None:
        if not self._modes:
            raise StoreNotOpenError(
                f"{self.display()} must be opened before use (in this thread: each thread opens a store for "
                "itself). Hint: `with store:` (read) or `with store.open('w'):` (write)."
            )

    @property
    def read_only(self) -> bool:
        """Whether the store is configured read-only (writes raise ``ReadOnlyStoreError``)."""
        return self._is_read_only()

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
                if isinstance(spec, StoreCore):
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

    def _graph(self) -> FeatureGraph:
        return current_graph()

    def _hash_length(self) -> int:
        return self.settings.hash_length

    def _map_mode(self) -> bool:
        return self.settings.map_mode


class _ThreadState(threading.local):
    """A store's open state in one thread."""

    def __init__(self) -> None:
        self.modes: list[AccessMode] = []
        self.entered: list[contextlib.AbstractContextManager[Any]] = []
        self.backend: dict[str, Any] = {}
        self.settings: VersioningSettings | None = None
