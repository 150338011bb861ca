"""Public helpers of ``metaxy.ext.dagster``: filters, stats, table previews, the public surface."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl
from mxd_helpers import root_rows

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.ext.dagster._partitions import partition_filters


def test_public_names_resolve() -> None:
    for name in mxd.__all__:
        assert getattr(mxd, name) is not None, name
    assert mxd.DAGSTER_METAXY_PARTITION_METADATA_KEY == "metaxy/partition"  # exported (G15)
    assert mx.metaxify is mxd.metaxify


def test_partition_filter_helpers() -> None:
    frame = pl.DataFrame({"part": ["a", "b", "b"]})
    assert mxd.build_partition_filter(None, "a") == []
    assert mxd.build_partition_filter("part", None) == []
    (expr,) = mxd.build_partition_filter("part", "b")
    assert len(nw.from_native(frame).filter(expr)) == 2
    spec = dg.AssetSpec("x", metadata={"partition_by": "part"})
    context = dg.build_asset_context(partition_key="a")
    (expr,) = mxd.get_partition_filter(context, spec)
    assert len(nw.from_native(frame).filter(expr)) == 1
    assert mxd.get_partition_filter(dg.build_asset_context(), spec) == []


def test_typed_partition_filters() -> None:
    frame = nw.from_native(
        pl.DataFrame(
            {
                "n": [1, 2, 3],
                "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
                "ts": [dt.datetime(2024, 1, d, 23, tzinfo=dt.UTC) for d in (1, 2, 3)],
            }
        )
    )
    schema = dict(frame.schema)
    static = dg.StaticPartitionsDefinition(["1", "2", "3"])
    assert frame.filter(*partition_filters("n", static, ["2", "3"], schema))["n"].to_list() == [2, 3]
    berlin = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="Europe/Berlin")
    # 2024-01-02 in Berlin is [01-01T23:00Z, 01-02T23:00Z): the 23:00Z row of the 1st belongs to it
    assert frame.filter(*partition_filters("ts", berlin, ["2024-01-02"], schema))["n"].to_list() == [1]
    assert frame.filter(*partition_filters("day", berlin, ["2024-01-02", "2024-01-03"], schema))["n"].to_list() == [
        2,
        3,
    ]


def test_stats_change_with_the_data(graph: mx.FeatureGraph, features: Any, store: mx.MetadataStore) -> None:
    empty = mxd.compute_stats_from_lazy_frame(pl.DataFrame({"metaxy_created_at": []}).lazy())
    assert empty == mxd.FeatureStats(0, dg.DataVersion("empty"))
    with store.open("w"):
        store.write(features["upstream"], root_rows(["a", "b"]))
    first = mxd.compute_feature_stats(store, features["upstream"])
    again = mxd.compute_feature_stats(store, features["upstream"])
    with store.open("w"):
        store.write(features["upstream"], root_rows(["c"]))
    grown = mxd.compute_feature_stats(store, features["upstream"])
    assert (first.row_count, grown.row_count) == (2, 3)
    assert first.data_version == again.data_version != grown.data_version
    assert first.data_version.value != "empty"


def test_table_preview_rendering() -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "struct": [{"key": "value1"}, None, {"key": "v3"}],
            "short": [["python", "data"], [], None],
            "long": [list(range(1, 11)), [1, 2, 3], [7]],
            "day": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)],
        }
    )
    preview = mxd.build_table_preview_metadata(frame, n_rows=2)
    assert [r.data["id"] for r in preview.records] == [2, 3]  # the last rows
    row2, row3 = (r.data for r in preview.records)
    assert row2["long"] == "[1,..,3]" and row2["short"] == "[]" and row2["struct"] is None
    assert row3["struct"] == '{"key":"v3"}' and row3["day"] == "2024-01-03"
    first = mxd.build_table_preview_metadata(frame.head(1)).records[0].data
    assert first["short"] == '["python","data"]' and first["long"] == "[1,..,10]"
    floats = pl.DataFrame({"v": [[1.0, 2.0, 3.0]]})
    assert mxd.build_table_preview_metadata(floats).records[0].data["v"] == "[1.0,..,3.0]"
    assert mxd.build_table_preview_metadata(frame.clear()).records == []
