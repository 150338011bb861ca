"""Runtime event metadata for a feature: row counts, store description, preview, run samples (spec §6-§7).

Errors are never turned into silent empty metadata (G12): callers decide; the IO manager logs
them and records ``metaxy/error``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import dagster as dg
import narwhals as nw
import polars as pl
import polars_hash  # noqa: F401  (registers the .nchash expression namespace)

from metaxy.ext.dagster.failures import failure_metadata
from metaxy.frames import to_polars_lazy
from metaxy.metadata_store.base import MetadataStore
from metaxy.models import constants as c
from metaxy.models.graph import current_graph
from metaxy.models.keys import FeatureKey, coerce_to_feature_key

from ._features import feature_metadata
from ._partitions import PartitionBy, build_metaxy_partition_filter, partition_filters
from ._preview import build_table_preview_metadata
from ._schema import build_column_schema
from .constants import (
    DAGSTER_METAXY_MATERIALIZED_IN_RUN_METADATA_KEY,
    DAGSTER_METAXY_STORE_METADATA_KEY,
)

__all__ = [
    "FeatureStats",
    "PartitionSelection",
    "build_runtime_feature_metadata",
    "compute_feature_stats",
    "compute_row_count",
    "compute_stats_from_lazy_frame",
    "feature_frames",
    "store_location",
]

EMPTY_DATA_VERSION = "empty"


class FeatureStats(NamedTuple):
    """Row count and a content-derived data version of a (filtered) feature frame."""

    row_count: int
    data_version: dg.DataVersion


class PartitionSelection(NamedTuple):
    """Which Dagster partitions an asset event is about."""

    partition_by: PartitionBy | None
    partitions_def: dg.PartitionsDefinition | None
    keys: Sequence[str] | None


def compute_row_count(lazy: Any) -> int:
    """The number of rows of a narwhals-compatible frame."""
    frame = nw.from_native(lazy)
    if isinstance(frame, nw.DataFrame):
        return len(frame)
    return int(frame.select(nw.len()).collect().item(0, 0))


def compute_stats_from_lazy_frame(
    lazy: Any, id_columns: Sequence[str] | None = None, *, store: MetadataStore | None = None
) -> FeatureStats:
    """Row count and content-derived data version of a feature frame, in one aggregate query.

    Each row is hashed (md5 of its id columns and ``metaxy_data_version`` in a canonical text
    form: dates as days and datetimes as microseconds since the epoch, other values as text); the
    version is a digest of the row count and the sums (mod 2**64) of two 32-bit slices of those
    hashes. Sums do not depend on row order, so the same rows give the same version on every
    backend, and adding, deleting or re-versioning any sample changes it. An empty frame gives
    ``DataVersion("empty")``.

    Args:
        lazy: a narwhals-compatible frame (eager or lazy) with ``metaxy_data_version``.
        id_columns: the feature's id columns. Pass them (or use :func:`compute_feature_stats`) to
            get the version Metaxy's Dagster events carry; without them rows are identified by
            their data version alone, which gives a different version.
        store: the store ``lazy`` was read from; when it computes the digest in its engine
            (``store.capabilities.content_digest``) only the three sums leave it.
    """
    frame = nw.from_native(lazy)
    if isinstance(frame, nw.DataFrame):
        frame = frame.lazy()
    schema = dict(frame.collect_schema())
    columns = [(col, _kind(schema[col])) for col in (*(id_columns or ()), c.DATA_VERSION) if col in schema]
    count, low, high = _content_sums(frame, columns, store)
    if count == 0:
        return FeatureStats(0, dg.DataVersion(EMPTY_DATA_VERSION))
    names = ",".join(col for col, _ in columns)
    digest = hashlib.sha256(f"{count}:{low % 2**64}:{high % 2**64}:{names}".encode()).hexdigest()[:16]
    return FeatureStats(count, dg.DataVersion(digest))


_SEPARATOR = "\x1f"
_Kind = str  # "date" | "datetime" | "text": how a column becomes canonical text


def _kind(dtype: Any) -> _Kind:
    if dtype == nw.Date:
        return "date"
    if isinstance(dtype, nw.Datetime) or dtype == nw.Datetime:
        return "datetime"
    return "text"


def _content_sums(
    frame: nw.LazyFrame[Any], columns: Sequence[tuple[str, _Kind]], store: MetadataStore | None
) -> tuple[int, int, int]:
    """``(rows, sum of hash[0:8], sum of hash[8:16])``, hash = md5 of the canonical columns joined by US."""
    if store is not None and store.capabilities.content_digest:
        sums = store.content_sums(frame, columns)
        if sums is not None:
            return sums
    native = frame.to_native()
    if not isinstance(native, pl.LazyFrame):  # any other backend: fetch only the hashed columns
        selected = frame.select(*(col for col, _ in columns)) if columns else frame
        native = to_polars_lazy(selected)
    if not columns:
        return int(native.select(pl.len()).collect().item()), 0, 0
    joined = pl.concat_str([_polars_text(col, kind) for col, kind in columns], separator=_SEPARATOR, ignore_nulls=True)
    digest: Any = joined.nchash.md5()  # type: ignore[attr-defined]
    row = native.select(
        pl.len().alias("n"),
        digest.str.slice(0, 8).str.to_integer(base=16).cast(pl.Int128).sum().alias("low"),
        digest.str.slice(8, 8).str.to_integer(base=16).cast(pl.Int128).sum().alias("high"),
    ).collect()
    return int(row["n"][0]), int(row["low"][0] or 0), int(row["high"][0] or 0)


def _polars_text(col: str, kind: _Kind) -> pl.Expr:
    if kind == "date":
        return pl.col(col).cast(pl.Int32).cast(pl.String)
    if kind == "datetime":
        return pl.col(col).dt.epoch("us").cast(pl.String)
    return pl.col(col).cast(pl.String)


def compute_feature_stats(store: MetadataStore, feature: Any) -> FeatureStats:
    """Open ``store`` and compute the stats of the feature's current rows."""
    key = coerce_to_feature_key(feature)
    with store:
        id_columns = current_graph().get_feature_definition(key).id_columns
        return compute_stats_from_lazy_frame(store.read(key), id_columns, store=store)


def _location(store: MetadataStore, key: FeatureKey) -> dict[str, Any]:
    out: dict[str, Any] = {"table_name": key.table_name}
    uri = store.location_uri(key)  # masked by the store; None when it cannot say
    if uri is not None:
        out["uri"] = uri
    return out


def store_location(store: MetadataStore, key: FeatureKey) -> dict[str, Any]:
    """Short input/event entries naming where a feature's rows are: ``metaxy/store`` (the store's
    ``display()``, credentials masked), ``dagster/table_name`` and ``dagster/uri`` when known."""
    location = _location(store, key)
    out: dict[str, Any] = {
        DAGSTER_METAXY_STORE_METADATA_KEY: store.display(),
        "dagster/table_name": location["table_name"],
    }
    if "uri" in location:
        out["dagster/uri"] = dg.MetadataValue.path(location["uri"])
    return out


_PREVIEW_SYSTEM_COLUMNS = (c.FEATURE_VERSION, c.DATA_VERSION, c.CREATED_AT)


def _preview(frame: nw.LazyFrame[Any], key: FeatureKey) -> dg.TableMetadataValue | None:
    """A small preview: id columns, user columns, then three system columns (not the structs)."""
    defn = current_graph().get_feature_definition(key)
    if defn.is_external:
        return None
    schema = build_column_schema(key)
    stored = set(frame.collect_schema().names())
    keep = [
        col
        for col in schema.columns
        if col.name in stored and (not c.is_system_column(col.name) or col.name in _PREVIEW_SYSTEM_COLUMNS)
    ]
    small = dg.TableSchema(columns=keep)
    return build_table_preview_metadata(
        frame.select(*(col.name for col in keep)), small, order_by=[i for i in defn.id_columns if i in stored]
    )


def feature_frames(
    store: MetadataStore,
    key: FeatureKey,
    *,
    partitions: PartitionSelection | None = None,
    metaxy_partition: Mapping[str, Any] | None = None,
) -> tuple[nw.LazyFrame[Any], nw.LazyFrame[Any], MetadataStore]:
    """``(slice, partition of the slice, store that had it)``: the feature's current rows in the
    asset's ``metaxy/partition`` slice, and those of them in the event's Dagster partitions (the
    same frame object when there is no partition filter).

    Raises:
        FeatureNotFoundError: the feature has no table in the store or its fallbacks.
        MetaxyDagsterError: a partition key cannot be compared with the partition column.
    """
    slice_filters = build_metaxy_partition_filter(metaxy_partition)
    whole, resolved = store.read(key, filters=slice_filters or None, with_store_info=True)
    if partitions is None or partitions.keys is None:
        return whole, whole, resolved
    schema = dict(whole.collect_schema())
    part = partition_filters(partitions.partition_by, partitions.partitions_def, partitions.keys, schema)
    return whole, (whole.filter(*part) if part else whole), resolved


def build_runtime_feature_metadata(
    feature: Any,
    store: MetadataStore,
    *,
    partitions: PartitionSelection | None = None,
    metaxy_partition: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> tuple[dict[str, Any], FeatureStats]:
    """Event metadata describing a feature's rows in ``store`` (which must be open).

    Args:
        feature: feature class, key or key string.
        store: the open store.
        partitions: the Dagster partitions the event is about (typed filters, ranges, multi-keys).
        metaxy_partition: the asset's ``metaxy/partition`` slice (list values allowed).
        run_id: count the slice's samples whose current row this run wrote.

    Returns:
        ``(metadata, stats)``; ``stats`` describe the partition (or the slice when unpartitioned).

    Raises:
        FeatureNotFoundError: the feature has no table in the store or its fallbacks.
        MetaxyDagsterError: a partition key cannot be compared with the partition column.
    """
    key = coerce_to_feature_key(feature)
    whole, frame, resolved = feature_frames(store, key, partitions=partitions, metaxy_partition=metaxy_partition)
    part_filters = frame is not whole
    id_columns = current_graph().get_feature_definition(key).id_columns
    stats = compute_stats_from_lazy_frame(frame, id_columns, store=resolved)
    md: dict[str, Any] = {**feature_metadata(key), **store_location(resolved, key)}  # where the rows were found
    if part_filters:
        md["dagster/row_count"] = compute_row_count(whole)
        md["dagster/partition_row_count"] = stats.row_count
    else:
        md["dagster/row_count"] = stats.row_count
    if run_id is not None:
        ran = frame.filter(nw.col(c.MATERIALIZATION_ID) == run_id)
        md[DAGSTER_METAXY_MATERIALIZED_IN_RUN_METADATA_KEY] = compute_row_count(ran)
    md.update(failure_metadata(store, key))  # issue 22 hook: metaxy/failed when failures were recorded
    preview = _preview(frame, key)
    if preview is not None:
        md["dagster/table"] = preview
    return md, stats
