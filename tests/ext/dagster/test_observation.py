"""observable_metaxy_asset and the observation jobs (spec §10-§11; G7, G8, G9)."""

from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import failure_text, observations, root_rows, values

import metaxy as mx
import metaxy.ext.dagster as mxd

UP = dg.AssetKey(["test", "upstream"])
DOWN = dg.AssetKey(["test", "downstream"])


def _version(store: mx.MetadataStore, feature: Any) -> str:
    return str(mxd.compute_feature_stats(store, feature).data_version.value)


def _run_observation(
    assets: list[Any], resources: dict[str, Any], instance: dg.DagsterInstance, **kwargs: Any
) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(assets=assets, resources=resources, jobs=[dg.define_asset_job("obs", selection=assets)])
    return defs.resolve_job_def("obs").execute_in_process(instance=instance, **kwargs)


def _write_up(store: mx.MetadataStore, features: dict[str, Any], ids: list[str], **columns: Any) -> None:
    with store.open("w"):
        store.write(features["upstream"], root_rows(ids, **columns))


def test_observable_asset_reports_rows_data_version_and_user_metadata(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _write_up(store, features, ["a", "b", "c"])

    @mxd.observable_metaxy_asset(feature=features["upstream"])
    def upstream(context: Any, store: Any, lazy: Any) -> dict[str, Any]:
        return {"custom/ids": sorted(lazy.collect()["id"].to_list())}

    assert upstream.key == UP and upstream.is_observable
    _run_observation([upstream], resources, instance)
    first = observations(instance, UP)[-1]
    assert values(first.metadata)["dagster/row_count"] == 3
    assert values(first.metadata)["custom/ids"] == ["a", "b", "c"]
    assert first.tags["dagster/data_version"] == _version(store, features["upstream"])
    assert first.tags["metaxy/feature"] == "test__upstream"
    _write_up(store, features, ["d"])
    _run_observation([upstream], resources, instance)
    second = observations(instance, UP)[-1]
    assert values(second.metadata)["dagster/row_count"] == 4
    assert second.tags["dagster/data_version"] != first.tags["dagster/data_version"]


def test_observable_asset_honours_key_and_keeps_deps_and_code_version(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.observable_metaxy_asset(feature="test/downstream", key=["custom", "down"], group_name="obs")
    def down(context: Any, store: Any, lazy: Any) -> None:
        return None

    spec = down.specs_by_key[dg.AssetKey(["custom", "down"])]
    assert [d.asset_key for d in spec.deps] == [UP]
    assert spec.code_version is not None and spec.code_version.startswith("metaxy:")
    assert spec.group_name == "obs"
    assert "metaxy" in spec.kinds
    assert spec.metadata["metaxy/feature"] == "test/downstream"


def test_observable_asset_filters_to_the_run_partition(
    graph: mx.FeatureGraph, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    class Regional(mx.BaseFeature, spec=mx.FeatureSpec(key="obs/regional", id_columns=["id"])):
        id: str
        region: str

    rows = pl.DataFrame(
        {
            "id": ["1", "2", "3", "4", "5"],
            "region": ["us", "us", "us", "eu", "eu"],
            "metaxy_provenance_by_field": [{"default": str(i)} for i in range(5)],
        }
    )
    with store.open("w"):
        store.write(Regional, rows)
    regions = dg.StaticPartitionsDefinition(["us", "eu"])

    @mxd.observable_metaxy_asset(feature=Regional, partitions_def=regions, metadata={"partition_by": "region"})
    def regional(context: Any, store: Any, lazy: Any) -> None:
        return None

    _run_observation([regional], resources, instance, partition_key="eu")
    (obs,) = observations(instance, ["obs", "regional"])
    assert obs.partition == "eu"
    assert (values(obs.metadata)["dagster/row_count"], values(obs.metadata)["dagster/partition_row_count"]) == (5, 2)


def test_observation_job_per_spec_with_data_version(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _write_up(store, features, ["a", "b", "c"])
    with store.open("w"):
        store.write(
            features["downstream"],
            store.resolve_update(features["downstream"]).new.to_polars().with_columns(doubled=pl.lit(0, pl.Int64)),
        )

    @dg.multi_asset(
        specs=[mxd.metaxify(dg.AssetSpec(k, metadata={"metaxy/feature": k.to_user_string()})) for k in (UP, DOWN)]
    )
    def both():  # type: ignore[no-untyped-def]  # Dagster reads the return annotation of multi-assets
        return None

    jobs = mxd.build_metaxy_observation_job(both)
    assert [j.name for j in jobs] == ["observe_test__upstream", "observe_test__downstream"]
    assert jobs[0].tags["metaxy/feature"] == "test/upstream"
    defs = dg.Definitions(assets=[both], jobs=jobs, resources=resources)
    for job in jobs:
        assert defs.resolve_job_def(job.name).execute_in_process(instance=instance).success
    for key, feature in ((UP, features["upstream"]), (DOWN, features["downstream"])):
        (obs,) = observations(instance, key)
        assert values(obs.metadata)["dagster/row_count"] == 3
        assert obs.tags["dagster/data_version"] == _version(store, feature)


def test_observation_job_of_a_missing_feature_says_so_with_tags(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    spec = mxd.metaxify(dg.AssetSpec(UP, metadata={"metaxy/feature": "test/upstream"}))
    (job,) = mxd.build_metaxy_observation_job(spec, store_resource_key="metaxy")
    assert job.execute_in_process(instance=instance, resources={"metaxy": resources["store"]}).success
    (obs,) = observations(instance, UP)
    md = values(obs.metadata)
    assert md["dagster/row_count"] == 0 and md["metaxy/error"].startswith("Feature not found")
    assert obs.tags["metaxy/feature"] == "test__upstream" and obs.tags["dagster/data_version"] == "empty"


def test_two_assets_on_one_feature_get_distinct_jobs_and_slice_totals(
    graph: mx.FeatureGraph, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="obs/events", id_columns=["id"])):
        id: str
        region: str
        day: str

    rows = pl.DataFrame(
        {
            "id": [str(i) for i in range(6)],
            "region": ["us", "us", "eu", "eu", "eu", "eu"],
            "day": ["d1", "d2", "d1", "d1", "d2", "d2"],
            "metaxy_provenance_by_field": [{"default": str(i)} for i in range(6)],
        }
    )
    with store.open("w"):
        store.write(Events, rows)
    days = dg.StaticPartitionsDefinition(["d1", "d2"])
    specs = [
        mxd.metaxify(
            dg.AssetSpec(
                "events",
                partitions_def=days,
                metadata={"metaxy/feature": "obs/events", "metaxy/partition": {"region": r}, "partition_by": "day"},
            )
        )
        for r in ("us", "eu")
    ]
    jobs = [job for spec in specs for job in mxd.build_metaxy_observation_job(spec)]
    assert [j.name for j in jobs] == ["observe_obs__events__region_us", "observe_obs__events__region_eu"]
    assert all(j.partitions_def == days for j in jobs)  # an AssetSpec's partitions_def is kept (G9)
    defs = dg.Definitions(jobs=jobs, resources=resources)  # unique names: Definitions accepts both
    for job in jobs:
        assert defs.resolve_job_def(job.name).execute_in_process(instance=instance, partition_key="d1").success
    us = observations(instance, ["obs", "events", "region_us"])[-1]
    eu = observations(instance, ["obs", "events", "region_eu"])[-1]
    # totals are the slice's, partition counts the slice's rows of the partition (G8)
    assert (values(us.metadata)["dagster/row_count"], values(us.metadata)["dagster/partition_row_count"]) == (2, 1)
    assert (values(eu.metadata)["dagster/row_count"], values(eu.metadata)["dagster/partition_row_count"]) == (4, 2)
    assert us.tags["dagster/data_version"] != eu.tags["dagster/data_version"]


def test_observation_job_argument_errors(features: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="Expected an AssetSpec or AssetsDefinition"):
        mxd.build_metaxy_observation_job("test/upstream")  # type: ignore[arg-type]
    with pytest.raises(mxd.MetaxyDagsterError, match="no specs with 'metaxy/feature'"):
        mxd.build_metaxy_observation_job(dg.AssetSpec("plain"))


def _pair(features: dict[str, Any]) -> tuple[dg.AssetSpec, dg.AssetSpec]:
    up = mxd.metaxify(dg.AssetSpec(UP, metadata={"metaxy/feature": "test/upstream"}))
    down = mxd.metaxify(dg.AssetSpec(DOWN, metadata={"metaxy/feature": "test/downstream"}))
    return up, down


def test_multi_observation_job_observes_all_or_the_configured_subset(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _write_up(store, features, ["a", "b"])
    up, down = _pair(features)
    job = mxd.build_metaxy_multi_observation_job("observe_all", assets=[up, down])
    assert "Observe 2 Metaxy assets:" in (job.description or "")
    assert job.metadata["metaxy/features"].value == ["test/upstream", "test/downstream"]
    second = mxd.build_metaxy_multi_observation_job("observe_again", assets=[up])
    defs = dg.Definitions(assets=[up, down], jobs=[job, second], resources=resources)
    config = {"ops": {"observe_all_fanout": {"config": {"asset_keys": ["test/upstream"]}}}}
    assert defs.resolve_job_def("observe_all").execute_in_process(instance=instance, run_config=config).success
    assert len(observations(instance, UP)) == 1 and observations(instance, DOWN) == []
    assert defs.resolve_job_def("observe_all").execute_in_process(instance=instance).success
    assert len(observations(instance, UP)) == 2 and len(observations(instance, DOWN)) == 1
    (down_obs,) = observations(instance, DOWN)
    assert values(down_obs.metadata)["dagster/row_count"] == 0  # downstream never written
    assert observations(instance, UP)[-1].tags["dagster/data_version"] == _version(store, features["upstream"])
    bad = {"ops": {"observe_all_fanout": {"config": {"asset_keys": ["nope"]}}}}
    result = defs.resolve_job_def("observe_all").execute_in_process(
        instance=instance, run_config=bad, raise_on_error=False
    )
    assert not result.success


def test_multi_observation_job_from_a_selection(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _write_up(store, features, ["a", "b", "c"])
    up, down = _pair(features)

    @dg.asset
    def plain() -> int:
        return 1

    defs = dg.Definitions(assets=[up, down, plain])
    job = mxd.build_metaxy_multi_observation_job(
        "sel", asset_selection=dg.AssetSelection.all(include_sources=True), defs=defs
    )
    assert sorted(job.metadata) == ["metaxy/asset/test/downstream", "metaxy/asset/test/upstream", "metaxy/features"]
    assert job.execute_in_process(instance=instance, resources=resources).success
    assert values(observations(instance, UP)[-1].metadata)["dagster/row_count"] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"assets": [], "asset_selection": "*", "defs": dg.Definitions()}, "Cannot provide both"),
        ({}, "Must provide either"),
        ({"asset_selection": "*"}, "'asset_selection' requires 'defs'"),
        ({"defs": dg.Definitions()}, "'defs' requires 'asset_selection'"),
        ({"assets": [dg.AssetSpec("plain")]}, "No assets have specs with 'metaxy/feature'"),
    ],
)
def test_multi_observation_job_argument_errors(features: dict[str, Any], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(mxd.MetaxyDagsterError, match=message):
        mxd.build_metaxy_multi_observation_job("bad", **kwargs)


def test_multi_observation_job_refuses_mixed_partitions(features: dict[str, Any]) -> None:
    up, down = _pair(features)
    parted = dg.AssetSpec(DOWN, metadata=dict(down.metadata), partitions_def=dg.StaticPartitionsDefinition(["x"]))
    with pytest.raises(mxd.MetaxyDagsterError, match="same partitions_def"):
        mxd.build_metaxy_multi_observation_job("mixed", assets=[up, parted])
    with pytest.raises(TypeError, match="Expected an AssetSpec or AssetsDefinition"):
        mxd.build_metaxy_multi_observation_job("wrong", assets=["test/upstream"])


def test_observable_asset_of_a_missing_feature_reports_zero_rows_without_calling_fn(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    called: list[bool] = []

    @mxd.observable_metaxy_asset(feature=features["upstream"])
    def upstream(context: Any, store: Any, lazy: Any) -> None:
        called.append(True)

    assert _run_observation([upstream], resources, instance).success
    (obs,) = observations(instance, UP)
    assert values(obs.metadata)["dagster/row_count"] == 0 and "metaxy/error" in obs.metadata
    assert called == []


def test_observe_function_errors_name_the_feature(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _write_up(store, features, ["a"])

    @mxd.observable_metaxy_asset(feature=features["upstream"])
    def upstream(context: Any, store: Any, lazy: Any) -> None:
        raise ZeroDivisionError("boom")

    result = _run_observation([upstream], resources, instance, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = failure_text(failure)
    assert "ZeroDivisionError: boom" in text and "observe function of Metaxy feature 'test/upstream'" in text


def test_multi_observation_job_rejects_colliding_asset_names_and_dedupes_repeats(features: dict[str, Any]) -> None:
    up, _ = _pair(features)
    job = mxd.build_metaxy_multi_observation_job("twice", assets=[up, up])
    assert job.metadata["metaxy/features"].value == ["test/upstream"]
    clash = dg.AssetSpec(["test__upstream"], metadata={"metaxy/feature": "test/upstream"})
    with pytest.raises(mxd.MetaxyDagsterError, match="map to the same dynamic output name 'test__upstream'"):
        mxd.build_metaxy_multi_observation_job("clash", assets=[up, clash])
