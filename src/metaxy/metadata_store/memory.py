"""``InMemoryMetadataStore``: tables are Polars DataFrames in a dict.

A real backend -- the reference for every other one, the test double, and the worked example of
docs/backends.md: it implements exactly the contract's required primitives and nothing else.
"""

from __future__ import annotations

import threading
from typing import Any

import polars as pl

from metaxy.models.filter_expression import FilterExpression
from metaxy.versioning.polars_executor import POLARS_HASH_ALGORITHMS

from .base import MetadataStore, MetadataStoreConfig
from .contract import AppendSource, StoreCapabilities
from .types import AccessMode

__all__ = ["InMemoryMetadataStore"]


class InMemoryMetadataStore(MetadataStore):
    """Metadata kept in process memory as Polars DataFrames; lost when the object is.

    Example:
        >>> import metaxy as mx
        >>> store = mx.InMemoryMetadataStore()
        >>> with store.open("w"):
        ...     store.list_features()
        []
    """

    # Polars computes every hash; a lock makes each append and delete atomic; one process only.
    capabilities = StoreCapabilities(
        hash_algorithms=POLARS_HASH_ALGORITHMS,
        map_type=True,
        transactions=True,
        concurrency="single_writer",
    )
    config_class = MetadataStoreConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tables: dict[str, pl.DataFrame] = {}
        self._lock = threading.RLock()

    def _getstate_backend(self, state: dict[str, Any]) -> dict[str, Any]:
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.RLock()

    # --- the contract's primitives --------------------------------------------------------------
    def _open_backend(self, mode: AccessMode) -> None:
        return None  # nothing to connect to

    def _close_backend(self) -> None:
        return None

    def _list_tables(self) -> list[str]:
        return sorted(self._tables)

    def _table_exists(self, table: str) -> bool:
        return table in self._tables

    def _drop(self, table: str) -> None:
        with self._lock:
            self._tables.pop(table, None)

    def _scan(self, table: str) -> pl.LazyFrame:
        return self._tables[table].lazy()

    def _append(self, table: str, rows: AppendSource) -> int:
        df = rows.to_polars().collect()  # collected before the swap: a failing frame appends nothing
        with self._lock:
            existing = self._tables.get(table)
            self._tables[table] = df if existing is None else pl.concat([existing, df], how="diagonal_relaxed")
        return df.height

    def _delete_where(self, table: str, where: FilterExpression | None) -> int:
        with self._lock:
            df = self._tables[table]
            kept = df.clear() if where is None else df.filter(~where.to_polars().fill_null(False))
            self._tables[table] = kept
            return df.height - kept.height
