"""MetaxyIOManager: writing outputs, reading inputs, runtime metadata, fallback stores, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import narwhals as nw
import pandas as pd
import polars as pl
import pytest
from mxd_helpers import latest_metadata, materializations, root_rows, store_config

import metaxy as mx
import metaxy.ext.dagster as mxd

Features = dict[str, type[mx.BaseFeature]]
UP = dg.AssetKey(["test", "upstream"])
DOWN = dg.AssetKey(["test", "downstream"])


def _upstream(frame: Any) -> dg.AssetsDefinition:
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream() -> mxd.MetaxyOutput:
        return frame

    return upstream


@pytest.mark.parametrize("kind", ["polars", "polars_lazy", "pandas", "pyarrow", "narwhals"])
def test_any_narwhals_frame_is_written(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore, kind: str
) -> None:
    frame: Any = root_rows(["a", "b", "c"])  # a Polars frame, or the pandas one below
    if kind == "pandas":
        frame = frame.with_columns(pl.col("metaxy_provenance_by_field").struct.json_encode()).to_pandas()
        frame["metaxy_provenance_by_field"] = frame["metaxy_provenance_by_field"].map(
            pd.io.json.ujson_loads  # type: ignore[attr-defined]  # pandas-stubs omit pandas' public ujson_loads
        )
    value: Any = {
        "polars": frame,
        "polars_lazy": frame.lazy() if isinstance(frame, pl.DataFrame) else None,
        "pandas": frame,
        "pyarrow": frame.to_arrow() if isinstance(frame, pl.DataFrame) else None,
        "narwhals": nw.from_native(frame) if isinstance(frame, pl.DataFrame) else None,
    }[kind]
    dg.materialize([_upstream(value)], resources=resources, instance=instance)
    md = latest_metadata(instance, UP)
    assert (md["dagster/row_count"], md["metaxy/materialized_in_run"]) == (3, 3)
    with store:
        assert sorted(store.read(features["upstream"]).collect()["id"].to_list()) == ["a", "b", "c"]


def test_output_metadata_describes_feature_store_and_preview(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    result = dg.materialize([_upstream(root_rows([f"s{i}" for i in range(7)]))], resources=resources, instance=instance)
    md = latest_metadata(instance, UP)
    assert md["metaxy/feature"] == "test/upstream"
    assert md["metaxy/feature_version"] == features["upstream"].feature_version()
    assert md["metaxy/store"] == f"DuckDBMetadataStore({tmp_path / 'dev.duckdb'})"  # the store's display()
    assert "metaxy/info" not in md
    assert all(not isinstance(v, dict) and len(str(v)) < 200 for k, v in md.items() if k.startswith("metaxy/"))
    assert md["dagster/table_name"] == "test__upstream"
    assert md["dagster/uri"] == str(tmp_path / "dev.duckdb")
    assert md["metaxy/materialized_in_run"] == 7
    preview = md["dagster/table"]
    assert [r.data["id"] for r in preview.records] == ["s2", "s3", "s4", "s5", "s6"]  # the last 5 rows
    # a small preview, user columns first
    assert [c.name for c in preview.schema.columns] == [
        "id",
        "value",
        "metaxy_data_version",
        "metaxy_feature_version",
        "metaxy_created_at",
    ]
    assert set(preview.records[0].data) == {c.name for c in preview.schema.columns}
    assert result.success


def test_none_output_describes_rows_written_by_the_asset(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        with store.open("w"):
            store.write(features["upstream"], root_rows(["a", "b"]))
        return None

    dg.materialize([upstream], resources=resources, instance=instance)
    md = latest_metadata(instance, UP)
    assert (md["dagster/row_count"], md["metaxy/materialized_in_run"]) == (2, 2)
    assert "metaxy/feature_version" in md and "metaxy/store" in md


def test_none_output_without_data_succeeds_and_says_why(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    result = dg.materialize([_upstream(None)], resources=resources, instance=instance)
    assert result.success
    md = latest_metadata(instance, UP)
    assert md["metaxy/feature"] == "test/upstream"
    assert "has no metadata" in md["metaxy/error"]
    assert "dagster/row_count" not in md
    warnings = [
        e for e in instance.all_logs(result.run_id) if e.level == 30 and "No Metaxy metadata" in (e.user_message or "")
    ]
    assert warnings


def test_metadata_errors_are_surfaced_not_swallowed(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    """G12: a partition key the column cannot hold is reported in the log and as metadata; the rows are
    written. (A partition_by column that does not exist fails the step: test_partition_guards.py.)"""

    @mxd.metaxify
    @dg.asset(
        metadata={"metaxy/feature": "test/upstream", "partition_by": "value"},  # an int column
        partitions_def=dg.StaticPartitionsDefinition(["x"]),
    )
    def upstream() -> mxd.MetaxyOutput:
        return root_rows(["a"])

    result = dg.materialize([upstream], resources=resources, instance=instance, partition_key="x")
    md = latest_metadata(instance, UP)
    assert "Partition key 'x' cannot be compared with column 'value'" in md["metaxy/error"]
    errors = [e for e in instance.all_logs(result.run_id) if e.level == 40 and "'x'" in (e.user_message or "")]
    assert errors
    with store:
        assert store.read(features["upstream"]).collect().shape[0] == 1


def test_output_that_is_not_a_frame_fails_the_step(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    result = dg.materialize([_upstream({"id": "a"})], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()  # type: ignore[union-attr]
    assert "is a dict, not a dataframe" in message and "Hint" in message


def test_asset_without_feature_fails_with_a_hint(resources: dict[str, Any], instance: dg.DagsterInstance) -> None:
    @dg.asset
    def plain() -> int:
        return 1

    result = dg.materialize([plain], resources=resources, instance=instance, raise_on_error=False)
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "has no 'metaxy/feature' metadata" in failure.step_failure_data.error.to_string()  # type: ignore[union-attr]


def test_metadata_the_asset_set_itself_is_kept(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream() -> dg.Output[Any]:
        return dg.Output(root_rows(["a", "b"]), metadata={"dagster/row_count": 99, "mine": "yes"})

    dg.materialize([upstream], resources=resources, instance=instance)
    md = latest_metadata(instance, UP)
    assert (md["dagster/row_count"], md["mine"], md["metaxy/materialized_in_run"]) == (99, "yes", 2)


def test_input_is_a_lazy_frame_valid_after_the_store_closed(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/downstream"}, ins={"up": dg.AssetIn(key=UP)})
    def downstream(up: Any, store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        assert isinstance(up, nw.LazyFrame)
        assert sorted(up.collect()["id"].to_list()) == ["a", "b", "c"]  # the IO manager's store is closed (G16)
        with store:
            new = store.resolve_update(features["downstream"]).new.to_polars()
        return new.with_columns(doubled=pl.col("value") * 2)

    result = dg.materialize([_upstream(root_rows(["a", "b", "c"])), downstream], resources=resources, instance=instance)
    assert result.success
    assert latest_metadata(instance, DOWN)["dagster/row_count"] == 3
    loaded = [e for e in result.all_events if e.event_type_value == "LOADED_INPUT"]
    assert loaded


def test_input_read_through_a_fallback_store(
    graph: mx.FeatureGraph, features: Features, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    fallback_db = tmp_path / "fallback.duckdb"
    config = store_config(
        tmp_path,
        dev={
            "type": "metaxy.ext.duckdb.DuckDBMetadataStore",
            "config": {"database": str(tmp_path / "primary.duckdb"), "fallback_stores": ["fallback"]},
        },
        fallback={"type": "metaxy.ext.duckdb.DuckDBMetadataStore", "config": {"database": str(fallback_db)}},
    )
    with config.use():
        fallback = config.get_store("fallback")
        with fallback.open("w"):
            fallback.write(features["upstream"], root_rows(["a", "b"]))
        external = mxd.metaxify(dg.AssetSpec("ext", metadata={"metaxy/feature": "test/upstream"}))

        @dg.asset(ins={"up": dg.AssetIn(key=external.key)}, io_manager_key="memory")
        def count_rows(up: Any) -> int:
            return len(up.collect())

        store = mxd.MetaxyStoreFromConfigResource()
        result = dg.materialize(
            [external.with_io_manager_key("io_manager"), count_rows],
            resources={"io_manager": mxd.MetaxyIOManager(store=store), "memory": dg.InMemoryIOManager()},
            instance=instance,
            selection=[count_rows.key],
        )
    assert result.output_for_node("count_rows") == 2
    observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert len(observations) == 1
    md = observations[0].asset_observation_data.asset_observation.metadata
    store_text = str(md["metaxy/store"].value)
    assert "fallback.duckdb" in store_text and "primary" not in store_text
    assert md["dagster/uri"].value == str(fallback_db)
    assert set(md) == {"metaxy/store", "dagster/table_name", "dagster/uri"}


def test_two_assets_append_to_one_feature(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    first = _upstream(root_rows(["a", "b", "c"]))
    dg.materialize([first], resources=resources, instance=instance)
    second = _upstream(root_rows(["d", "e"]))
    dg.materialize([second], resources=resources, instance=instance)
    runs = materializations(instance, UP)
    counts = [(m.metadata["dagster/row_count"].value, m.metadata["metaxy/materialized_in_run"].value) for m in runs]
    assert counts == [(3, 3), (5, 2)]
