"""Filters selecting the rows of Dagster partitions and of ``metaxy/partition`` slices (G11).

Partition keys are compared with the column in the column's own type: a time-window partition
becomes a ``[start, end)`` range on a Date or Datetime column, a static key is cast to an
integer or date column's type, and multi-dimensional keys are split per dimension when
``partition_by`` maps dimensions to columns. Ranges (single-run backfills) select every key of
the range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import narwhals as nw

from .constants import DAGSTER_METAXY_PARTITION_KEY
from .errors import MetaxyDagsterError, MetaxyPartitionError

__all__ = [
    "build_metaxy_partition_filter",
    "build_partition_filter",
    "get_partition_filter",
    "partition_by_of",
    "partition_columns",
    "partition_filters",
    "partition_keys_of",
]

PartitionBy = str | Mapping[str, str]


def build_partition_filter(partition_col: str | None, partition_key: str | None) -> list[nw.Expr]:
    """``[col == key]``, or ``[]`` when either is None (string comparison; see ``partition_filters``)."""
    if partition_col is None or partition_key is None:
        return []
    return [nw.col(partition_col) == partition_key]


def build_metaxy_partition_filter(slice_filter: Mapping[str, Any] | None) -> list[nw.Expr]:
    """One filter per ``metaxy/partition`` item: ``is_in`` for list values, ``==`` otherwise."""
    out = []
    for column, value in (slice_filter or {}).items():
        if isinstance(value, list | tuple | set):
            out.append(nw.col(column).is_in(list(value)))
        else:
            out.append(nw.col(column) == value)
    return out


def partition_by_of(metadata: Mapping[str, Any] | None) -> PartitionBy | None:
    """The ``partition_by`` entry of asset metadata (a column, or ``{dimension: column}``), or None."""
    value = (metadata or {}).get(DAGSTER_METAXY_PARTITION_KEY)
    return getattr(value, "value", value)


def partition_columns(partition_by: PartitionBy | None) -> list[str]:
    """The columns a ``partition_by`` entry names (one, or one per dimension)."""
    if partition_by is None:
        return []
    if isinstance(partition_by, Mapping):
        return [str(col) for col in partition_by.values()]
    return [str(partition_by)]


def partition_keys_of(context: Any) -> list[str] | None:
    """The partition keys of a run/step context: one key, a backfill range, or None if unpartitioned."""
    if getattr(context, "has_partition_key", False):
        return [context.partition_key]
    if getattr(context, "has_partition_key_range", False):
        return list(context.partition_keys)
    return None


def get_partition_filter(context: Any, spec: dg.AssetSpec) -> list[nw.Expr]:
    """The string-equality partition filter of ``spec.metadata["partition_by"]`` for the context's key.

    Kept for compatibility; the IO manager uses the typed ``partition_filters``.
    """
    column = partition_by_of(spec.metadata)
    if not getattr(context, "has_partition_key", False) or not isinstance(column, str):
        return []
    return build_partition_filter(column, context.partition_key)


def partition_filters(
    partition_by: PartitionBy | None,
    partitions_def: dg.PartitionsDefinition | None,
    keys: Sequence[str] | None,
    schema: Mapping[str, Any],
) -> list[nw.Expr]:
    """Filters selecting the rows of Dagster partitions ``keys``.

    Args:
        partition_by: the column holding partition keys, or ``{dimension: column}`` for a
            ``MultiPartitionsDefinition``.
        partitions_def: the asset's partitions definition (time windows come from it).
        keys: the selected partition keys (None: unpartitioned, no filter).
        schema: the stored frame's narwhals schema (column name → dtype).

    Returns:
        A list of narwhals expressions to AND (empty when there is nothing to filter).

    Raises:
        MetaxyDagsterError: a column is missing, or a key cannot be cast to the column's type.
    """
    if partition_by is None or keys is None:
        return []
    if isinstance(partition_by, Mapping):
        if not isinstance(partitions_def, dg.MultiPartitionsDefinition):
            raise MetaxyDagsterError(
                f"'{DAGSTER_METAXY_PARTITION_KEY}' = {dict(partition_by)!r} maps dimensions to columns, but the "
                f"asset's partitions are {type(partitions_def).__name__}. Hint: use a column name, or a "
                "MultiPartitionsDefinition whose dimensions are the mapping's keys."
            )
        return [_multi_filter(partition_by, partitions_def, keys, schema)]
    return [_keys_filter(partition_by, partitions_def, keys, schema)]


def _column_dtype(column: str, schema: Mapping[str, Any]) -> Any:
    if column not in schema:
        raise MetaxyPartitionError(
            f"Partition column '{column}' is not in the feature's stored columns ({', '.join(schema)}). "
            f"Hint: set asset metadata '{DAGSTER_METAXY_PARTITION_KEY}' to the column holding partition keys."
        )
    return schema[column]


def _keys_filter(
    column: str, partitions_def: dg.PartitionsDefinition | None, keys: Sequence[str], schema: Mapping[str, Any]
) -> nw.Expr:
    dtype = _column_dtype(column, schema)
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition) and _is_temporal(dtype):
        windows = _merge_windows([partitions_def.time_window_for_partition_key(k) for k in keys])
        return _any([_window_filter(column, dtype, start, end) for start, end in windows])
    values = [_cast_key(column, dtype, k) for k in keys]
    return nw.col(column) == values[0] if len(values) == 1 else nw.col(column).is_in(values)


def _multi_filter(
    columns: Mapping[str, str],
    partitions_def: dg.MultiPartitionsDefinition,
    keys: Sequence[str],
    schema: Mapping[str, Any],
) -> nw.Expr:
    dims = {d.name: d.partitions_def for d in partitions_def.partitions_defs}
    unknown = sorted(set(columns) - set(dims))
    if unknown:
        raise MetaxyDagsterError(
            f"'{DAGSTER_METAXY_PARTITION_KEY}' names dimensions {unknown}, which the asset's partitions do not "
            f"have (dimensions: {', '.join(sorted(dims))}). Hint: map each dimension name to its column."
        )
    parsed = [partitions_def.get_partition_key_from_str(str(k)).keys_by_dimension for k in keys]
    per_dim = {name: sorted({p[name] for p in parsed}) for name in columns}
    combos = {tuple(p[name] for name in columns) for p in parsed}
    if len(combos) == len(list(product(*per_dim.values()))):  # a full cartesian product: filter per dimension
        return _all([_keys_filter(col, dims[name], per_dim[name], schema) for name, col in columns.items()])
    return _any(
        [_all([_keys_filter(col, dims[name], [p[name]], schema) for name, col in columns.items()]) for p in parsed]
    )


def _is_temporal(dtype: Any) -> bool:
    return dtype == nw.Date or isinstance(dtype, nw.Datetime) or dtype == nw.Datetime


def _merge_windows(windows: Sequence[Any]) -> list[tuple[dt.datetime, dt.datetime]]:
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for w in sorted(windows, key=lambda w: w.start):
        if merged and w.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], w.end))
        else:
            merged.append((w.start, w.end))
    return merged


def _boundary(value: dt.datetime, dtype: Any) -> Any:
    if dtype == nw.Date:
        return value.date()
    tz = getattr(dtype, "time_zone", None)
    if tz:
        return value.astimezone(ZoneInfo(tz))
    return value.replace(tzinfo=None)


def _window_filter(column: str, dtype: Any, start: dt.datetime, end: dt.datetime) -> nw.Expr:
    return (nw.col(column) >= _boundary(start, dtype)) & (nw.col(column) < _boundary(end, dtype))


def _cast_key(column: str, dtype: Any, key: str) -> Any:
    try:
        if dtype.is_integer():
            return int(key)
        if dtype.is_float():
            return float(key)
        if dtype == nw.Date:
            return dt.date.fromisoformat(key)
        if _is_temporal(dtype):
            parsed = dt.datetime.fromisoformat(key)
            tz = getattr(dtype, "time_zone", None)
            if parsed.tzinfo is None and tz:
                parsed = parsed.replace(tzinfo=ZoneInfo(tz))
            return _boundary(parsed, dtype) if parsed.tzinfo else parsed
    except ValueError as exc:
        raise MetaxyDagsterError(
            f"Partition key {key!r} cannot be compared with column '{column}' of type {dtype}. "
            "Hint: store partition keys as strings, or use a partitions definition whose keys parse as the "
            "column's type (e.g. DailyPartitionsDefinition for a Date column)."
        ) from exc
    return str(key)


def _any(exprs: Sequence[nw.Expr]) -> nw.Expr:
    out = exprs[0]
    for e in exprs[1:]:
        out = out | e
    return out


def _all(exprs: Sequence[nw.Expr]) -> nw.Expr:
    out = exprs[0]
    for e in exprs[1:]:
        out = out & e
    return out
