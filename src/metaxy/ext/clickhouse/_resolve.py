"""``resolve_update`` of the ClickHouse store as one statement inside ClickHouse.

The SQL layer composes the statement (:func:`metaxy.versioning.sql_executor.rendered_resolve`) with
the ClickHouse dialect; the store runs it once and splits the tagged rows into new / stale /
orphaned frames. Lazy increments run the statement when first collected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from metaxy.metadata_store import _native_resolve
from metaxy.metadata_store.contract import ResolveRequest
from metaxy.metadata_store.types import Increment, LazyIncrement
from metaxy.versioning.sql_executor import ORPHAN_ROW, orphan_column

if TYPE_CHECKING:
    from .store import ClickHouseMetadataStore


def resolve_native(
    store: ClickHouseMetadataStore, request: ResolveRequest, *, strict: bool, lazy: bool
) -> LazyIncrement | Increment | None:
    native = _native_resolve.prepare(
        store,
        request,
        store.dialect,
        strict=strict,
        engine="ClickHouse",
        types=True,
        carry=store._carries,
    )
    if native is None:
        return None
    rendered = native.rendered
    transport = store.transport  # lazy frames may collect on Polars' threads

    def query(name: str, build: Any, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        from . import _types
        from ._transport import TransportError

        try:
            table = transport.query_arrow(rendered.text(name, build))  # rendered once per cached plan
        except TransportError as exc:
            raise store._error(f"Resolving '{request.plan.feature}'", exc) from None
        return _types.conform(unpacked(table), schema)

    def fetch(which: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        if which == "input":
            return query("expected", lambda r: r.expected, schema)
        if which == "expected":  # without the data-version copies
            return query("computed", lambda r: r.computed, schema)
        return query("increment", lambda r: r.tagged(), schema)

    return _native_resolve.fetched_increment(native, request, fetch, lazy=lazy)


def unpacked(table: pa.Table) -> pa.Table:
    """``table`` with a carried stored row (:data:`ORPHAN_ROW`, a tuple: an Arrow struct of fields
    ``1``, ``2``, ...) as one column per stored column (``__metaxy_o<i>``), in its place."""
    if ORPHAN_ROW not in table.column_names:
        return table
    at = table.column_names.index(ORPHAN_ROW)
    fields = table.column(at).flatten()
    table = table.remove_column(at)
    for i, values in enumerate(fields):
        table = table.add_column(at + i, orphan_column(i), values)
    return table
