"""The read layer of ``MetadataStore``: ``read`` and feature lookup (fallbacks), over the contract."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import narwhals as nw
import polars as pl

from metaxy import _hooks
from metaxy.errors import FeatureNotFoundError, SystemDataNotFoundError
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import CoercibleToFeatureKey, FeatureKey
from metaxy.versioning import polars_executor as px

from ._frames import FilterLike, apply_filters, check_columns, coerce_filters
from ._store_core import StoreCore
from .contract import ReadRequest, scan_to_polars
from .filters import parse_filters

if TYPE_CHECKING:
    from .base import MetadataStore

__all__ = ["ReadingStore"]


class ReadingStore(StoreCore):
    """``read``, ``has_feature``, ``list_features`` and the fallback lookup."""

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
            _hooks.run_before_store_access(self)  # e.g. external features of other projects (config.sync)
        if feature_version is not None and not with_feature_history:
            raise ValueError(
                f"read('{key}', feature_version={feature_version!r}) needs with_feature_history=True. "
                "Hint: pass with_feature_history=True to read another feature version."
            )
        parsed = coerce_filters(filters)
        if self._is_system(key):
            frame = self._read_system(key, parsed, columns)
            return (frame, cast("MetadataStore", self)) if with_store_info else frame
        store = self._find_store(key, allow_fallback=allow_fallback)
        version = None if with_feature_history else self._graph().get_feature_version(key)
        if with_feature_history and feature_version is not None:
            version = feature_version
        with store.open("r") if store is not self else contextlib.nullcontext():
            table = store._table(key)
            available = store._column_names(table)
            check_columns(f"'{key}' in {store.display()}", available, filters=parsed, columns=columns)
            parsed = store._parse_filters(table, parsed)
            request = ReadRequest(
                key=key,
                table=table,
                feature_version=version,
                id_columns=tuple(self._graph().get_feature_definition(key).id_columns),
                with_sample_history=with_sample_history,
                include_soft_deleted=include_soft_deleted,
                filters=tuple(f for f in parsed if isinstance(f, FilterExpression)),
                columns=tuple(columns) if columns is not None else None,
            )
            frame = store._run_read(request, parsed)
            if store is not self:
                frame = self._detach(frame)
        return (frame, store) if with_store_info else frame

    def _detach(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """A frame read from another (now closing) store, made independent of its connection."""
        native = frame.to_native()
        if isinstance(native, pl.LazyFrame):
            return frame
        return nw.from_native(frame.collect().to_polars().lazy())

    def _parse_filters(self, table: str, filters: Sequence[FilterLike]) -> list[FilterLike]:
        """Filters with every narwhals expression parsed into the AST (over the table's schema)."""
        if not any(isinstance(f, nw.Expr) for f in filters):
            return list(filters)
        return parse_filters(filters, self._table_schema(table))

    def _run_read(self, request: ReadRequest, filters: Sequence[FilterLike]) -> nw.LazyFrame[Any]:
        """The backend's native read when every filter is an AST and it has one, else Polars."""
        if len(request.filters) == len(filters):
            native = self._read_frame(request)
            if native is not None:
                return native
        return self._read_polars(request, filters)

    def _read_polars(self, request: ReadRequest, filters: Sequence[FilterLike]) -> nw.LazyFrame[Any]:
        """The read pipeline (Polars): version filter → latest per id → hide deleted → filters → columns."""
        lf = scan_to_polars(self._scan(request.table))
        if request.feature_version is not None:
            lf = lf.filter(pl.col(c.FEATURE_VERSION) == request.feature_version)
        if not request.with_sample_history:
            lf = px.latest_rows(lf, request.id_columns)
        if not request.include_soft_deleted:
            lf = lf.filter(pl.col(c.DELETED_AT).is_null())
        lf = apply_filters(lf, filters)
        if request.columns is not None:
            lf = lf.select(list(request.columns))
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
        lf = apply_filters(scan_to_polars(self._scan(table)), filters)
        return nw.from_native(lf.select(list(columns)) if columns is not None else lf)

    def _find_store(self, key: FeatureKey, *, allow_fallback: bool) -> MetadataStore:
        if self._table_exists(self._table(key)):
            return cast("MetadataStore", self)
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

    def drop_feature_metadata(self, feature: CoercibleToFeatureKey) -> None:
        """Drop a feature's table and all its rows."""
        self._require_write()
        table = self._table(self._key(feature))
        if self._table_exists(table):
            self._drop(table)

    def list_features(self) -> list[FeatureKey]:
        """Keys of the features that have a table in this store (system tables excluded)."""
        self._require_open()
        known = {self._table(k): k for k in self._graph().feature_definitions_by_key}
        return sorted((known[t] for t in self._list_tables() if t in known), key=str)
