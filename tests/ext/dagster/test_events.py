"""generate_materialize_results / generate_observe_results and data versions (spec §6-§9; G2-G4, G12-G14)."""

from typing import Any

import dagster as dg
import polars as pl
import pytest
from dagster._core.events import HandledOutputData
from mxd_helpers import (
    event_types,
    latest_metadata,
    latest_tags,
    materializations,
    observations,
    root_rows,
    step_error,
    values,
)

import metaxy as mx
import metaxy.ext.dagster as mxd

A, B, C = (dg.AssetKey(["chain", k]) for k in "abc")


@pytest.fixture
def chain(graph: mx.FeatureGraph) -> dict[str, type[mx.BaseFeature]]:
    """``chain/a`` → ``chain/b`` → ``chain/c``."""

    class FA(mx.BaseFeature, spec=mx.FeatureSpec(key="chain/a", id_columns=["id"], fields=["value"])):
        id: str

    class FB(mx.BaseFeature, spec=mx.FeatureSpec(key="chain/b", id_columns=["id"], deps=[FA])):
        id: str

    class FC(mx.BaseFeature, spec=mx.FeatureSpec(key="chain/c", id_columns=["id"], deps=[FB])):
        id: str

    return {"a": FA, "b": FB, "c": FC}


def _specs(*keys: dg.AssetKey) -> list[dg.AssetSpec]:
    return [mxd.metaxify(dg.AssetSpec(k, metadata={"metaxy/feature": k.to_user_string()})) for k in keys]


def _write_chain(store: mx.MetadataStore, chain: dict[str, Any], ids: list[str], keys: set[str]) -> None:
    with store.open("w"):
        if "a" in keys:
            store.write(chain["a"], root_rows(ids))
        for name in ("b", "c"):
            if name in keys:
                store.write(chain[name], store.resolve_update(chain[name]).new)


def _chain_asset(ids: list[str], *, can_subset: bool = False, spec_order: str = "cba") -> dg.AssetsDefinition:
    keys = {"a": A, "b": B, "c": C}

    @dg.multi_asset(specs=_specs(*(keys[k] for k in spec_order)), can_subset=can_subset)
    def chain_assets(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        from metaxy.models.graph import current_graph

        selected = {k.path[-1] for k in context.selected_asset_keys}
        features = {k.path[-1]: current_graph().get_feature_class(k.to_user_string()) for k in keys.values()}
        _write_chain(store, features, ids, selected)
        yield from mxd.generate_materialize_results(context, store)

    return chain_assets


def test_results_in_topological_order_with_content_data_versions(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    result = dg.materialize([_chain_asset(["x", "y", "z"])], resources=resources, instance=instance)
    assert event_types(result, "ASSET_MATERIALIZATION") == ["chain/a", "chain/b", "chain/c"]
    for name, key in (("a", A), ("b", B), ("c", C)):
        md, tags = latest_metadata(instance, key), latest_tags(instance, key)
        assert md["dagster/row_count"] == 3 and md["metaxy/materialized_in_run"] == 3
        assert md["metaxy/feature"] == f"chain/{name}"
        assert md["metaxy/store"] == store.display()  # short, typed entries (no JSON blobs)
        assert md["metaxy/feature_version"] == chain[name].feature_version()
        assert tags["metaxy/feature"] == f"chain__{name}"
        assert tags["dagster/data_version"] == mxd.compute_feature_stats(store, chain[name]).data_version.value
        assert tags["dagster/data_version_is_user_provided"] == "true"
    # no IO manager is called for results without a value (G4)
    assert not [e for e in result.all_events if e.event_type_value == "HANDLED_OUTPUT"]


def test_second_run_reports_nothing_materialized_and_same_data_version(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    asset = _chain_asset(["x", "y"])
    dg.materialize([asset], resources=resources, instance=instance)
    first = latest_tags(instance, C)["dagster/data_version"]
    dg.materialize([asset], resources=resources, instance=instance)  # resolve_update finds nothing new
    assert latest_metadata(instance, A)["metaxy/materialized_in_run"] == 2  # the root rows were written again
    assert latest_metadata(instance, C)["metaxy/materialized_in_run"] == 0  # same provenance: nothing to recompute
    assert latest_tags(instance, C)["dagster/data_version"] == first


def test_subset_run_of_a_subsettable_multi_asset_reports_only_the_selection(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    asset = _chain_asset(["x"], can_subset=True)
    result = dg.materialize([asset], resources=resources, instance=instance, selection=[A])
    assert result.success
    assert event_types(result, "ASSET_MATERIALIZATION") == ["chain/a"]
    result = dg.materialize([asset], resources=resources, instance=instance, selection=[B, C])
    assert event_types(result, "ASSET_MATERIALIZATION") == ["chain/b", "chain/c"]


def test_data_version_changes_with_any_sample_and_not_with_order(
    chain: dict[str, Any], store: mx.MetadataStore
) -> None:
    feature = chain["a"]
    versions = []
    with store.open("w"):
        store.write(feature, root_rows(["p", "q", "r"]))
        versions.append(mxd.compute_feature_stats(store, feature))
        store.write(
            feature, root_rows(["r", "q", "p"]).with_columns(value=pl.lit(0, pl.Int64))
        )  # same provenance, new rows
        versions.append(mxd.compute_feature_stats(store, feature))
        changed = root_rows(["q"]).with_columns(metaxy_provenance_by_field=pl.lit({"value": "changed"}))
        store.write(feature, changed)
        versions.append(mxd.compute_feature_stats(store, feature))
        store.write(feature, root_rows(["s"]))
        versions.append(mxd.compute_feature_stats(store, feature))
        store.delete(feature, filters=["id = 's'"])
        versions.append(mxd.compute_feature_stats(store, feature))
    counts = [v.row_count for v in versions]
    assert counts == [3, 3, 3, 4, 3]
    dv = [v.data_version.value for v in versions]
    assert dv[0] == dv[1], "rewriting the same samples (any order) keeps the version"
    assert len({dv[0], dv[2], dv[3]}) == 3, "changing or adding a sample changes it"
    assert dv[4] == dv[2], "deleting the added sample brings the previous content back"


@pytest.mark.parametrize("other", ["memory", "delta"])
def test_data_version_is_identical_across_backends(
    chain: dict[str, Any], store: mx.MetadataStore, other: str, tmp_path: Any
) -> None:
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
    from metaxy.metadata_store import InMemoryMetadataStore

    second: mx.MetadataStore = (
        InMemoryMetadataStore()
        if other == "memory"
        else DeltaMetadataStore(tmp_path / "delta", auto_create_tables=True)
    )
    rows = root_rows([f"s{i}" for i in range(50)])
    for target, frame in ((store, rows), (second, rows.reverse())):
        with target.open("w"):
            target.write(chain["a"], frame)
            target.write(chain["b"], target.resolve_update(chain["b"]).new)
    for name in ("a", "b"):
        ours, theirs = mxd.compute_feature_stats(store, chain[name]), mxd.compute_feature_stats(second, chain[name])
        assert ours == theirs and ours.row_count == 50


def test_empty_and_missing_features_are_told_apart(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    @dg.multi_asset(specs=_specs(A, B))
    def two(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("w"):
            store.write(chain["a"], root_rows(["x"]).head(0))
        yield from mxd.generate_materialize_results(context, store)

    result = dg.materialize([two], resources=resources, instance=instance)
    assert result.success
    empty, missing = latest_metadata(instance, A), latest_metadata(instance, B)
    assert empty["dagster/row_count"] == 0 and "metaxy/error" not in empty
    assert missing["dagster/row_count"] == 0 and missing["metaxy/error"].startswith("Feature not found")
    assert latest_tags(instance, A)["dagster/data_version"] == "empty"


def _default_rows(ids: list[str], **columns: list[Any]) -> pl.DataFrame:
    """Rows of a feature with the single ``default`` field."""
    return pl.DataFrame({"id": ids, **columns, "metaxy_provenance_by_field": [{"default": i} for i in ids]})


def test_partitioned_results_report_total_and_partition_counts(
    graph: mx.FeatureGraph, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    class Daily(mx.BaseFeature, spec=mx.FeatureSpec(key="part/daily", id_columns=["id"])):
        id: str
        day: str

    parts = dg.StaticPartitionsDefinition(["d1", "d2"])

    @mxd.metaxify(feature=Daily)
    @dg.asset(partitions_def=parts, metadata={"partition_by": "day"})
    def daily(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        n = 3 if context.partition_key == "d1" else 2
        ids = [f"{context.partition_key}_{i}" for i in range(n)]
        with store.open("w"):
            store.write(Daily, _default_rows(ids, day=[context.partition_key] * n))
        yield from mxd.generate_materialize_results(context, store)

    dg.materialize([daily], resources=resources, instance=instance, partition_key="d1")
    dg.materialize([daily], resources=resources, instance=instance, partition_key="d2")
    mats = materializations(instance, ["part", "daily"])
    got = [
        (m.partition, values(m.metadata)["dagster/row_count"], values(m.metadata)["dagster/partition_row_count"])
        for m in mats
    ]
    assert got == [("d1", 3, 3), ("d2", 5, 2)]
    assert len({(m.tags or {})["dagster/data_version"] for m in mats}) == 2


def test_backfill_range_is_reported_for_the_range(
    graph: mx.FeatureGraph, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    import datetime as dt

    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="part/events", id_columns=["id"])):
        id: str
        day: dt.date

    days = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-05")

    @mxd.metaxify(feature=Events)
    @dg.asset(partitions_def=days, metadata={"partition_by": "day"}, backfill_policy=dg.BackfillPolicy.single_run())
    def events(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        rows = pl.DataFrame(
            {
                "id": [f"e{i}" for i in range(4)],
                "day": [dt.date(2024, 1, d) for d in (1, 2, 3, 4)],
                "metaxy_provenance_by_field": [{"default": str(i)} for i in range(4)],
            }
        )
        with store.open("w"):
            store.write(Events, rows)
        yield from mxd.generate_materialize_results(context, store)

    tags = {"dagster/asset_partition_range_start": "2024-01-02", "dagster/asset_partition_range_end": "2024-01-03"}
    result = dg.materialize([events], resources=resources, instance=instance, tags=tags)
    assert result.success
    mats = materializations(instance, ["part", "events"])
    assert sorted(str(m.partition) for m in mats) == ["2024-01-02", "2024-01-03"]
    assert {
        (values(m.metadata)["dagster/row_count"], values(m.metadata)["dagster/partition_row_count"]) for m in mats
    } == {(4, 2)}


def test_plain_op_logs_asset_materializations_with_data_versions(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    specs = _specs(A)

    @dg.op(required_resource_keys={"store"})
    def write_a(context: dg.OpExecutionContext) -> Any:
        _write_chain(context.resources.store, chain, ["x", "y"], {"a"})
        yield from mxd.generate_materialize_results(context, context.resources.store, specs=specs)
        yield dg.Output(None)

    @dg.job(resource_defs={"store": resources["store"]})
    def write_job() -> None:
        write_a()

    assert write_job.execute_in_process(instance=instance).success
    assert latest_metadata(instance, A)["dagster/row_count"] == 2
    assert (
        latest_tags(instance, A)["dagster/data_version"]
        == mxd.compute_feature_stats(store, chain["a"]).data_version.value
    )


def test_plain_op_without_specs_fails_with_a_clear_error(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.op(required_resource_keys={"store"})
    def no_specs(context: dg.OpExecutionContext) -> Any:
        yield from mxd.generate_materialize_results(context, context.resources.store)

    @dg.job(resource_defs={"store": resources["store"]})
    def bad_job() -> None:
        no_specs()

    result = bad_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert "specs must be provided" in step_error(result, "no_specs")


def test_observe_results_in_a_multi_observable_source_asset(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _write_chain(store, chain, ["x", "y", "z", "w"], {"a", "b"})

    @dg.multi_observable_source_asset(specs=_specs(B, A))
    def observed(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        yield from mxd.generate_observe_results(context, store)

    defs = dg.Definitions(
        assets=[observed], resources=resources, jobs=[dg.define_asset_job("observe", selection=[A, B])]
    )
    assert defs.resolve_job_def("observe").execute_in_process(instance=instance).success
    for key, feature in ((A, chain["a"]), (B, chain["b"])):
        (obs,) = observations(instance, key)
        assert values(obs.metadata)["dagster/row_count"] == 4
        assert obs.tags["dagster/data_version"] == mxd.compute_feature_stats(store, feature).data_version.value


def test_check_results_are_passed_through_to_their_assets(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.multi_asset(
        specs=_specs(A, B),
        check_specs=[dg.AssetCheckSpec("rows_ok", asset=A), dg.AssetCheckSpec("rows_ok", asset=B)],
    )
    def checked(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        _write_chain(store, chain, ["x"], {"a", "b"})
        yield from mxd.generate_materialize_results(
            context,
            store,
            check_results=[
                dg.AssetCheckResult(asset_key=A, check_name="rows_ok", passed=True),
                dg.AssetCheckResult(asset_key=B, check_name="rows_ok", passed=False, metadata={"why": "test"}),
            ],
        )

    result = dg.materialize([checked], resources=resources, instance=instance)
    evaluations = {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {"chain/a": True, "chain/b": False}


def test_check_result_for_an_unreported_asset_fails_the_step(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.multi_asset(specs=_specs(A, B))
    def two(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        _write_chain(store, chain, ["x"], {"a", "b"})
        yield from mxd.generate_materialize_results(
            context, store, check_results=[dg.AssetCheckResult(check_name="orphan", passed=True)]
        )

    result = dg.materialize([two], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    assert "has no asset_key, but 2 assets are reported" in step_error(result, "two")


def test_value_for_the_metaxy_io_manager_is_written_and_described_once(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    @mxd.metaxify(feature=chain["a"])
    @dg.asset
    def a(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        yield from mxd.generate_materialize_results(context, store, values={"chain/a": root_rows(["u", "v"])})

    result = dg.materialize([a], resources=resources, instance=instance)
    handled = [e for e in result.all_events if e.event_type_value == "HANDLED_OUTPUT"]
    assert len(handled) == 1, "the IO manager wrote the value"
    md, tags = latest_metadata(instance, A), latest_tags(instance, A)
    assert md["dagster/row_count"] == 2 and md["metaxy/materialized_in_run"] == 2
    assert tags["dagster/data_version"] == mxd.compute_feature_stats(store, chain["a"]).data_version.value


def test_value_for_an_unknown_asset_fails_the_step(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify(feature=chain["a"])
    @dg.asset
    def a(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        yield from mxd.generate_materialize_results(context, store, values={"chain/zzz": 1})

    result = dg.materialize([a], resources=resources, instance=instance, raise_on_error=False)
    error = step_error(result, "a")
    assert "values key 'chain/zzz' matches no reported asset" in error


def test_io_manager_materializations_carry_the_content_data_version(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    @mxd.metaxify(feature=chain["a"])
    @dg.asset
    def a() -> mxd.MetaxyOutput:
        return root_rows(["u", "v", "w"])

    dg.materialize([a], resources=resources, instance=instance)
    tags = latest_tags(instance, A)
    assert tags["dagster/data_version"] == mxd.compute_feature_stats(store, chain["a"]).data_version.value
    assert tags["dagster/data_version_is_user_provided"] == "true"


def test_asset_returning_none_with_generated_metadata_is_not_described_twice(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    """An ``@asset`` on the Metaxy IO manager yielding an explicit ``value=None`` result (G4)."""

    @mxd.metaxify(feature=chain["a"])
    @dg.asset
    def a(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        _write_chain(store, chain, ["x"], {"a"})
        (result,) = mxd.generate_materialize_results(context, store)
        return dg.MaterializeResult(
            asset_key=result.asset_key,
            metadata={**(result.metadata or {}), "mine": 1},
            data_version=result.data_version,
            value=None,
        )

    result = dg.materialize([a], resources=resources, instance=instance)
    md = latest_metadata(instance, A)
    assert md["mine"] == 1 and md["dagster/row_count"] == 1
    (handled,) = [e for e in result.all_events if e.event_type_value == "HANDLED_OUTPUT"]
    assert isinstance(handled.event_specific_data, HandledOutputData)
    assert handled.event_specific_data.metadata == {}, "the IO manager was called (value=None) but added nothing"
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("came with the result; not reading the store again" in m for m in messages)
    assert "metaxy/error" not in md


def test_results_describe_feature_and_store_and_skip_non_metaxy_specs(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, tmp_path: Any
) -> None:
    @dg.multi_asset(specs=[*_specs(A), dg.AssetSpec("plain")])
    def mixed(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        _write_chain(store, chain, ["x", "y"], {"a"})
        results = list(mxd.generate_materialize_results(context, store))
        assert [r.asset_key for r in results] == [A]  # the plain spec is not Metaxy's to report
        yield from results
        yield dg.MaterializeResult(asset_key="plain")

    dg.materialize([mixed], resources=resources, instance=instance)
    md = latest_metadata(instance, A)
    assert md["metaxy/project"] == "test_events" and md["metaxy/feature"] == "chain/a"
    assert md["metaxy/code_version"] == chain["a"].spec().code_version
    assert md["metaxy/store"] == f"DuckDBMetadataStore({tmp_path / 'dev.duckdb'})" and "metaxy/info" not in md
    assert md["dagster/table_name"] == "chain__a" and md["dagster/uri"] == str(tmp_path / "dev.duckdb")
    assert [r["id"] for r in (rec.data for rec in md["dagster/table"].records)] == ["x", "y"]


def test_two_slices_of_one_feature_in_one_multi_asset(
    graph: mx.FeatureGraph, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="slices/events", id_columns=["id"])):
        id: str
        region: str

    specs = [
        mxd.metaxify(
            dg.AssetSpec("events", metadata={"metaxy/feature": "slices/events", "metaxy/partition": {"region": r}})
        )
        for r in ("us", "eu")
    ]
    assert len({s.key for s in specs}) == 2  # one key per slice (G5)

    @dg.multi_asset(specs=specs)
    def regions(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("w"):
            store.write(Events, _default_rows(["1", "2", "3"], region=["us", "eu", "eu"]))
        yield from mxd.generate_materialize_results(context, store)

    dg.materialize([regions], resources=resources, instance=instance)
    us = latest_metadata(instance, ["slices", "events", "region_us"])
    eu = latest_metadata(instance, ["slices", "events", "region_eu"])
    assert (us["dagster/row_count"], us["metaxy/materialized_in_run"]) == (1, 1)
    assert (eu["dagster/row_count"], eu["metaxy/materialized_in_run"]) == (2, 2)


def test_value_for_another_io_manager_is_passed_with_the_generated_metadata(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify(feature=chain["a"])
    @dg.asset(io_manager_key="models")
    def a(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        _write_chain(store, chain, ["x", "y"], {"a"})  # metadata written here; the value is something else
        yield from mxd.generate_materialize_results(context, store, values={A: {"weights": [1, 2]}})

    result = dg.materialize([a], resources={**resources, "models": dg.mem_io_manager}, instance=instance)
    assert result.output_for_node("a") == {"weights": [1, 2]}
    assert latest_metadata(instance, A)["dagster/row_count"] == 2


def test_values_and_checks_for_unselected_assets_are_dropped_in_subset_runs(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.multi_asset(
        specs=_specs(A, B),
        can_subset=True,
        check_specs=[dg.AssetCheckSpec("ok", asset=A), dg.AssetCheckSpec("ok", asset=B)],
    )
    def both(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        selected = {k.path[-1] for k in context.selected_asset_keys}
        _write_chain(store, chain, ["x"], selected)
        checks = [dg.AssetCheckResult(asset_key=k, check_name="ok", passed=True) for k in (A, B)]
        yield from mxd.generate_materialize_results(
            context, store, values={B: None, "chain/a": None}, check_results=checks
        )

    result = dg.materialize([both], resources=resources, instance=instance, selection=[A])
    assert result.success
    assert event_types(result, "ASSET_MATERIALIZATION") == ["chain/a"]
    assert [e.asset_key for e in result.get_asset_check_evaluations()] == [A]


def test_values_matching_no_or_several_assets_and_wrong_arguments_fail_clearly(
    graph: mx.FeatureGraph, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="amb/events", id_columns=["id"])):
        id: str
        region: str

    specs = [
        mxd.metaxify(dg.AssetSpec("e", metadata={"metaxy/feature": "amb/events", "metaxy/partition": {"region": r}}))
        for r in ("us", "eu")
    ]

    @dg.multi_asset(specs=specs)
    def regions(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        yield from mxd.generate_materialize_results(context, store, values={"amb/events": None})

    result = dg.materialize([regions], resources=resources, instance=instance, raise_on_error=False)
    error = step_error(result, "regions")
    assert "values key 'amb/events' matches several reported asset" in error

    with pytest.raises(mxd.MetaxyDagsterError, match="Expected a Dagster AssetExecutionContext"):
        list(mxd.generate_materialize_results("not a context", None))


def test_store_argument_must_be_a_store(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify(feature=chain["a"])
    @dg.asset
    def a(context: dg.AssetExecutionContext) -> Any:
        yield from mxd.generate_materialize_results(context, "dev")

    result = dg.materialize([a], resources=resources, instance=instance, raise_on_error=False)
    error = step_error(result, "a")
    assert "Expected a Metaxy MetadataStore (or MetaxyStoreFromConfigResource), got str" in error


def test_values_in_a_plain_op_are_refused(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    specs = _specs(A)

    @dg.op(required_resource_keys={"store"})
    def plain(context: dg.OpExecutionContext) -> Any:
        yield from mxd.generate_materialize_results(context, context.resources.store, specs=specs, values={A: 1})

    @dg.job(resource_defs={"store": resources["store"]})
    def job() -> None:
        plain()

    result = job.execute_in_process(instance=instance, raise_on_error=False)
    error = step_error(result, "plain")
    assert "values need an asset context" in error


def test_partition_key_that_does_not_fit_the_column_fails_the_step(
    graph: mx.FeatureGraph, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    class Counted(mx.BaseFeature, spec=mx.FeatureSpec(key="part/counted", id_columns=["id"])):
        id: str
        n: int

    @mxd.metaxify(feature=Counted)
    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["one"]), metadata={"partition_by": "n"})
    def counted(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("w"):
            store.write(Counted, _default_rows(["x"], n=[1]))
        yield from mxd.generate_materialize_results(context, store)

    result = dg.materialize(
        [counted], resources=resources, instance=instance, partition_key="one", raise_on_error=False
    )
    error = step_error(result, "counted")
    assert "Partition key 'one' cannot be compared with column 'n'" in error


def test_observations_do_not_claim_materialized_samples(
    chain: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _write_chain(store, chain, ["x"], {"a"})
    (job,) = mxd.build_metaxy_observation_job(_specs(A)[0])
    assert job.execute_in_process(instance=instance, resources={"store": resources["store"]}).success
    (obs,) = observations(instance, A)
    assert "metaxy/materialized_in_run" not in obs.metadata
    assert obs.tags["dagster/data_version_is_user_provided"] == "true"


def test_data_version_is_identical_across_backends_for_typed_ids(
    graph: mx.FeatureGraph, store: mx.MetadataStore
) -> None:
    import datetime as dt

    from metaxy.metadata_store import InMemoryMetadataStore

    class Typed(mx.BaseFeature, spec=mx.FeatureSpec(key="typed/ids", id_columns=["day", "at", "n", "x"])):
        day: dt.date
        at: dt.datetime
        n: int
        x: float

    rows = pl.DataFrame(
        {
            "day": [dt.date(2024, 1, 1), dt.date(1969, 12, 30)],
            "at": [dt.datetime(2024, 1, 1, 1, 2, 3, 456789, tzinfo=dt.UTC), dt.datetime(1960, 1, 1, tzinfo=dt.UTC)],
            "n": [1, -2],
            "x": [0.5, 2.25],
            "metaxy_provenance_by_field": [{"default": "a"}, {"default": "b"}],
        }
    )
    memory = InMemoryMetadataStore()
    for target in (store, memory):
        with target.open("w"):
            target.write(Typed, rows)
    assert mxd.compute_feature_stats(store, Typed) == mxd.compute_feature_stats(memory, Typed)
