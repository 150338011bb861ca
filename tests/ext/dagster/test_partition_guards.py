"""Dangerous outputs are refused before anything is written: rows outside an asset's
``metaxy/partition`` slice, and ``partition_by`` / slice columns the output does not have."""

from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import step_error

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.errors import FeatureNotFoundError


@pytest.fixture
def events(graph: mx.FeatureGraph) -> type[mx.BaseFeature]:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="guard/events", id_columns=["id"])):
        id: str
        region: str | None

    return Events


def _rows(regions: list[str | None]) -> pl.DataFrame:
    ids = [f"e{i}" for i in range(len(regions))]
    return pl.DataFrame(
        {"id": ids, "region": regions, "metaxy_provenance_by_field": [{"default": i} for i in ids]},
        schema_overrides={"region": pl.String},
    )


def _slice_asset(frame: Any, metadata: dict[str, Any] | None = None, **asset_kwargs: Any) -> dg.AssetsDefinition:
    @mxd.metaxify
    @dg.asset(
        name="us_events",
        metadata={"metaxy/feature": "guard/events", "metaxy/partition": {"region": "us"}, **(metadata or {})},
        **asset_kwargs,
    )
    def producer() -> mxd.MetaxyOutput:
        return frame

    return producer


def _stored(store: mx.MetadataStore, feature: Any) -> int:
    with store:
        try:
            return len(store.read(feature).collect())
        except FeatureNotFoundError:
            return 0


@pytest.mark.parametrize(
    ("regions", "offender"),
    [(["us", "eu", "us"], "'eu'"), (["us", None], "None")],
    ids=["another-slice", "null"],
)
def test_rows_outside_the_slice_are_refused_and_nothing_is_written(
    events: Any,
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    store: mx.MetadataStore,
    regions: list[str | None],
    offender: str,
) -> None:
    asset = _slice_asset(_rows(regions))
    result = dg.materialize([asset], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    error = step_error(result, "us_events")
    assert "MetaxyPartitionError" in error and "rows outside the asset's slice {'region': 'us'}" in error
    assert offender in error and "Nothing was written" in error
    assert _stored(store, events) == 0


def test_rows_inside_the_slice_are_written(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    asset = _slice_asset(_rows(["us", "us"]).lazy())  # lazy frames are checked too
    assert dg.materialize([asset], resources=resources, instance=instance).success
    assert _stored(store, events) == 2


def test_a_missing_slice_column_is_refused(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    asset = _slice_asset(_rows(["us"]), metadata={"metaxy/partition": {"country": "us"}})
    result = dg.materialize([asset], resources=resources, instance=instance, raise_on_error=False)
    error = step_error(result, "us_events")
    assert "has no column 'country', which the asset's slice names" in error
    assert "Available columns: id, region" in error
    assert _stored(store, events) == 0


DAYS = dg.StaticPartitionsDefinition(["2024-01-01", "2024-01-02"])


def test_a_missing_partition_by_column_fails_the_step_before_writing(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    @mxd.metaxify
    @dg.asset(partitions_def=DAYS, metadata={"metaxy/feature": "guard/events", "partition_by": "day"})
    def daily() -> mxd.MetaxyOutput:
        return _rows(["us"])

    result = dg.materialize(
        [daily], resources=resources, instance=instance, partition_key="2024-01-01", raise_on_error=False
    )
    error = step_error(result, "daily")
    assert "MetaxyPartitionError" in error and "has no column 'day', which the asset's partition_by names" in error
    assert _stored(store, events) == 0


def test_a_missing_partition_by_column_fails_the_step_when_the_asset_wrote_itself(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify
    @dg.asset(partitions_def=DAYS, metadata={"metaxy/feature": "guard/events", "partition_by": "day"})
    def daily(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        with store.open("w"):
            store.write(events, _rows(["us"]))
        return None

    result = dg.materialize(
        [daily], resources=resources, instance=instance, partition_key="2024-01-01", raise_on_error=False
    )
    error = step_error(result, "daily")
    assert "MetaxyPartitionError" in error and "Partition column 'day' is not in the feature's stored columns" in error
