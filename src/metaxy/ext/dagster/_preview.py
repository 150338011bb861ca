"""A small table preview of a feature's latest rows, as Dagster ``TableMetadataValue`` (spec §12.3)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl

from metaxy.models import constants as c

__all__ = ["build_table_preview_metadata"]


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _render(value: Any, dtype: pl.DataType) -> Any:
    if value is None:
        return None
    if isinstance(dtype, pl.Struct):
        return _compact_json(value)
    if isinstance(dtype, pl.List | pl.Array):
        items = list(value)
        if len(items) <= 2:
            return _compact_json(items)
        return f"[{_scalar_text(items[0])},..,{_scalar_text(items[-1])}]"
    if isinstance(value, dt.date | dt.time | dt.timedelta):
        return str(value)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _scalar_text(value: Any) -> str:
    return _compact_json(value) if isinstance(value, dict | list) else str(value)


def _is_map(dtype: pl.DataType) -> bool:
    """A Map extension dtype (a list of key/value structs), rendered as a JSON object."""
    return (
        isinstance(dtype, pl.List)
        and isinstance(dtype.inner, pl.Struct)
        and [f.name for f in dtype.inner.fields] == ["key", "value"]
    )


def _tail(lazy: nw.LazyFrame[Any], n_rows: int, order_by: Sequence[str]) -> pl.DataFrame:
    native = lazy.to_native()
    names = lazy.collect_schema().names()
    order = [c.CREATED_AT, *order_by] if c.CREATED_AT in names else []
    if isinstance(native, pl.LazyFrame | pl.DataFrame) and not order:
        return native.lazy().tail(n_rows).collect()
    if order:  # backends without a row order: the newest rows, ties broken by the id columns
        head = lazy.sort(order, descending=True, nulls_last=True).head(n_rows).collect().to_polars()
        return head.reverse()
    return lazy.head(n_rows).collect().to_polars()


def build_table_preview_metadata(
    lazy: Any, schema: dg.TableSchema | None = None, *, n_rows: int = 5, order_by: Sequence[str] = ()
) -> dg.TableMetadataValue:
    """The last ``n_rows`` rows as a Dagster table (for ``dagster/table`` metadata).

    Structs become compact JSON; lists of at most 2 items become JSON, longer ones
    ``[first,..,last]``; maps become JSON objects; dates and times become strings.

    Args:
        lazy: any narwhals-compatible frame (eager or lazy).
        schema: the column schema to attach (e.g. ``build_column_schema(feature)``); default:
            the frame's columns and dtypes.
        n_rows: how many rows to show.
        order_by: columns breaking ties of ``metaxy_created_at`` (e.g. the id columns), so the
            preview is deterministic; without ``metaxy_created_at``, Polars frames keep their order.

    Returns:
        ``MetadataValue.table(records, schema)``; an empty frame gives no records.
    """
    frame = nw.from_native(lazy)
    if isinstance(frame, nw.DataFrame):
        frame = frame.lazy()
    df = _tail(frame, n_rows, order_by)
    records = []
    for row in df.iter_rows(named=True):
        data = {}
        for name, value in row.items():
            dtype = df.schema[name]
            if _is_map(dtype) and value is not None:
                data[name] = json.dumps({str(kv["key"]): kv["value"] for kv in value}, default=str)
            else:
                data[name] = _render(value, dtype)
        records.append(dg.TableRecord(data=data))
    if schema is None:  # Dagster needs a schema for an empty table; derive one from the frame
        schema = dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in df.schema.items()])
    return dg.MetadataValue.table(records=records, schema=schema)
