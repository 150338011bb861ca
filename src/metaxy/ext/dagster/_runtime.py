"""Runtime event metadata for a feature: row counts, store description, preview, run samples (spec §6-§7).

Errors are never turned into silent empty metadata (G12): callers decide; the IO manager logs
them and records ``metaxy/error``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import dagster as dg
import narwhals as nw

from metaxy.metadata_store.base import MetadataStore
from metaxy.models import constants as c
from metaxy.models.graph import current_graph
from metaxy.models.keys import FeatureKey, coerce_to_feature_key

from ._features import build_feature_info_metadata
from ._partitions import PartitionBy, build_metaxy_partition_filter, partition_filters
from ._preview import build_table_preview_metadata
from ._schema import build_column_schema
from .constants import (
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
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
    "store_metadata",
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


def compute_stats_from_lazy_frame(lazy: Any) -> FeatureStats:
    """Row count and data version of a feature frame in one aggregate query.

    The data version hashes the row count, the range of ``metaxy_updated_at`` (every write gets
    a new timestamp) and the range of ``metaxy_data_version``, so additions, deletions and
    rewrites all change it; the same stored state always gives the same version, on every
    backend. An empty frame gives ``DataVersion("empty")``.
    """
    frame = nw.from_native(lazy)
    if isinstance(frame, nw.DataFrame):
        frame = frame.lazy()
    names = set(frame.collect_schema().names())
    aggs = [nw.len().alias("n")]
    for col in (c.UPDATED_AT, c.CREATED_AT, c.DATA_VERSION):
        if col in names:
            aggs += [nw.col(col).min().alias(f"min_{col}"), nw.col(col).max().alias(f"max_{col}")]
    row = frame.select(*aggs).collect().rows(named=True)[0]
    count = int(row["n"])
    if count == 0:
        return FeatureStats(0, dg.DataVersion(EMPTY_DATA_VERSION))
    digest = hashlib.sha256("|".join(f"{k}={row[k]}" for k in sorted(row)).encode()).hexdigest()[:16]
    return FeatureStats(count, dg.DataVersion(digest))


def compute_feature_stats(store: MetadataStore, feature: Any) -> FeatureStats:
    """Open ``store`` and compute the stats of the feature's current rows."""
    with store:
        return compute_stats_from_lazy_frame(store.read(feature))


def _location(store: MetadataStore, key: FeatureKey) -> dict[str, Any]:
    out: dict[str, Any] = {"table_name": key.table_name}
    table_uri = getattr(store, "table_uri", None)
    database = getattr(store, "database", None)
    if callable(table_uri):
        out["uri"] = str(table_uri(key))
    elif isinstance(database, str) and database != ":memory:":
        out["uri"] = database if "://" in database else os.path.abspath(database)
    return out


def store_metadata(store: MetadataStore, resolved: MetadataStore | None, key: FeatureKey) -> dict[str, Any]:
    """``metaxy/store``: the configured store and the one the data came from (``resolved_from``)."""
    resolved = resolved or store
    return {
        "name": store.name,
        "type": store.qualified_class_name,
        "display": store.display(),
        "versioning_engine": store.versioning_engine,
        "resolved_from": {**resolved.get_store_info(), **_location(resolved, key)},
    }


def _preview(frame: Any, key: FeatureKey) -> dg.TableMetadataValue | None:
    defn = current_graph().get_feature_definition(key)
    if defn.is_external:
        return None
    return build_table_preview_metadata(frame, build_column_schema(key), order_by=defn.id_columns)


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
    slice_filters = build_metaxy_partition_filter(metaxy_partition)
    whole, resolved = store.read(key, filters=slice_filters or None, with_store_info=True)
    part_filters: list[nw.Expr] = []
    if partitions is not None and partitions.keys is not None:
        schema = dict(whole.collect_schema())
        part_filters = partition_filters(partitions.partition_by, partitions.partitions_def, partitions.keys, schema)
    frame = whole.filter(*part_filters) if part_filters else whole
    stats = compute_stats_from_lazy_frame(frame)
    location = _location(resolved, key)
    md: dict[str, Any] = {
        DAGSTER_METAXY_FEATURE_METADATA_KEY: key.to_string(),
        DAGSTER_METAXY_INFO_METADATA_KEY: build_feature_info_metadata(key),
        DAGSTER_METAXY_STORE_METADATA_KEY: store_metadata(store, resolved, key),
        "dagster/table_name": location["table_name"],
    }
    if "uri" in location:
        md["dagster/uri"] = dg.MetadataValue.path(location["uri"])
    if part_filters:
        md["dagster/row_count"] = compute_row_count(whole)
        md["dagster/partition_row_count"] = stats.row_count
    else:
        md["dagster/row_count"] = stats.row_count
    if run_id is not None:
        ran = frame.filter(nw.col(c.MATERIALIZATION_ID) == run_id)
        md[DAGSTER_METAXY_MATERIALIZED_IN_RUN_METADATA_KEY] = compute_row_count(ran)
    preview = _preview(frame, key)
    if preview is not None:
        md["dagster/table"] = preview
    return md, stats
