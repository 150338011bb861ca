"""Several assets producing one feature, each owning a ``metaxy/partition`` slice (G5, G11)."""

from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import defs_assets, latest_metadata, step_order

import metaxy as mx
import metaxy.ext.dagster as mxd

US = dg.AssetKey(["slice", "events", "region_us"])
EU = dg.AssetKey(["slice", "events", "region_eu"])


@pytest.fixture
def events(graph: mx.FeatureGraph) -> dict[str, type[mx.BaseFeature]]:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="slice/events", id_columns=["id"])):
        id: str
        region: str
        category: str

    class Summary(mx.BaseFeature, spec=mx.FeatureSpec(key="slice/summary", id_columns=["id"], deps=[Events])):
        id: str
        region: str

    return {"events": Events, "summary": Summary}


def _rows(region: str, n: int, category: str = "a") -> pl.DataFrame:
    ids = [f"{region}_{category}_{i}" for i in range(n)]
    return pl.DataFrame(
        {
            "id": ids,
            "region": [region] * n,
            "category": [category] * n,
            "metaxy_provenance_by_field": [{"default": i} for i in ids],
        }
    )


def _slice_asset(name: str, slice_filter: dict[str, Any], frame: pl.DataFrame) -> dg.AssetsDefinition:
    @mxd.metaxify
    @dg.asset(name=name, metadata={"metaxy/feature": "slice/events", "metaxy/partition": slice_filter})
    def producer() -> mxd.MetaxyOutput:
        return frame

    return producer


def test_slices_get_distinct_keys_and_their_own_counts(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    us = _slice_asset("us_events", {"region": "us"}, _rows("us", 2))
    eu = _slice_asset("eu_events", {"region": "eu"}, _rows("eu", 3))
    assert (us.key, eu.key) == (US, EU)

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "slice/summary"})
    def a_summary(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        with store:
            return store.resolve_update(events["summary"]).new.to_polars().drop("category")

    assert {d.asset_key for d in next(iter(a_summary.specs)).deps} == {US, EU}  # every producer
    defs = dg.Definitions(assets=[us, eu, a_summary])  # no duplicate-key error
    result = dg.materialize(defs_assets(defs), resources=resources, instance=instance)

    assert step_order(result)[-1] == "a_summary"
    assert (
        latest_metadata(instance, US)["dagster/row_count"],
        latest_metadata(instance, US)["metaxy/materialized_in_run"],
    ) == (2, 2)
    assert (
        latest_metadata(instance, EU)["dagster/row_count"],
        latest_metadata(instance, EU)["metaxy/materialized_in_run"],
    ) == (3, 3)
    assert latest_metadata(instance, a_summary.key)["dagster/row_count"] == 5
    with store:
        assert len(store.read(events["events"]).collect()) == 5


def test_reading_one_slice_and_list_valued_slices(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    north = _slice_asset("north", {"region": ["us", "ca"]}, pl.concat([_rows("us", 2), _rows("ca", 1)]))
    eu = _slice_asset("eu_events", {"region": "eu"}, _rows("eu", 3))
    assert north.key == dg.AssetKey(["slice", "events", "region_ca_us"])

    @dg.asset(ins={"rows": dg.AssetIn(key=north.key)}, io_manager_key="memory")
    def north_ids(rows: Any) -> list[str]:
        return sorted(rows.collect()["id"].to_list())

    result = dg.materialize(
        [north, eu, north_ids], resources={**resources, "memory": dg.InMemoryIOManager()}, instance=instance
    )
    assert latest_metadata(instance, north.key)["dagster/row_count"] == 3  # list values on the output side
    assert result.output_for_node("north_ids") == ["ca_a_0", "us_a_0", "us_a_1"]


def test_two_column_slices_in_one_multi_asset(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify
    @dg.multi_asset(
        outs={
            "us_a": dg.AssetOut(
                metadata={"metaxy/feature": "slice/events", "metaxy/partition": {"region": "us", "category": "a"}}
            ),
            "us_b": dg.AssetOut(
                metadata={"metaxy/feature": "slice/events", "metaxy/partition": {"region": "us", "category": "b"}}
            ),
        }
    )
    def by_category() -> tuple[pl.DataFrame, pl.DataFrame]:
        return _rows("us", 2, "a"), _rows("us", 3, "b")

    keys = {
        dg.AssetKey(["slice", "events", "category_a__region_us"]),
        dg.AssetKey(["slice", "events", "category_b__region_us"]),
    }
    assert set(by_category.keys) == keys
    dg.materialize([by_category], resources=resources, instance=instance)
    counts = sorted(latest_metadata(instance, k)["dagster/row_count"] for k in keys)
    assert counts == [2, 3]


def test_same_feature_without_slices_in_one_multi_asset_is_rejected(events: Any) -> None:
    with pytest.raises(ValueError, match=r"same key.*metaxy/partition"):

        @mxd.metaxify
        @dg.multi_asset(
            specs=[
                dg.AssetSpec("one", metadata={"metaxy/feature": "slice/events"}),
                dg.AssetSpec("two", metadata={"metaxy/feature": "slice/events"}),
            ]
        )
        def twice():  # type: ignore[no-untyped-def]
            ...
