"""Asset checks: the seed's inline check results, and Metaxy-derived checks (G19)."""

from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import root_rows

import metaxy as mx
import metaxy.ext.dagster as mxd

UP = dg.AssetKey(["test", "upstream"])
DOWN = dg.AssetKey(["test", "downstream"])


def _assets(features: dict[str, Any]) -> list[dg.AssetsDefinition]:
    @mxd.metaxify(feature=features["upstream"])
    @dg.asset
    def upstream() -> mxd.MetaxyOutput:
        return root_rows(["a", "b", "c"])

    @mxd.metaxify(feature=features["downstream"])
    @dg.asset
    def downstream(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store:
            increment = store.resolve_update(features["downstream"])
        frame = pl.concat([increment.new.to_polars(), increment.stale.to_polars()])
        return frame.with_columns(doubled=pl.lit(0, pl.Int64))

    return [upstream, downstream]


def _evaluations(result: Any) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_seed_materialize_result_with_check_results_on_a_metaxified_asset(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify(feature=features["upstream"])
    @dg.asset(check_specs=[dg.AssetCheckSpec(name="my_check", asset="upstream")])
    def upstream(store: dg.ResourceParam[mx.MetadataStore]) -> dg.MaterializeResult:
        with store.open("w"):
            store.write(features["upstream"], root_rows(["a"]))
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True, metadata={"rows": 1})])

    assert upstream.check_keys == {dg.AssetCheckKey(UP, "my_check")}  # the check moved with the key
    result = dg.materialize([upstream], resources=resources, instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.asset_key == UP


def test_metaxy_checks_pass_then_report_stale_missing_and_orphaned_samples(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    assets = _assets(features)
    checks = mxd.build_metaxy_asset_checks(assets)
    assert [c.check_keys for c in checks] == [
        {
            dg.AssetCheckKey(DOWN, "metaxy_up_to_date"),
            dg.AssetCheckKey(DOWN, "metaxy_no_orphans"),
            dg.AssetCheckKey(DOWN, "metaxy_failures"),
        }
    ], "root features get no checks"
    result = dg.materialize([*assets, *checks], resources=resources, instance=instance)
    evaluations = _evaluations(result)
    assert evaluations["metaxy_up_to_date"].passed and evaluations["metaxy_no_orphans"].passed
    assert evaluations["metaxy_up_to_date"].metadata["dagster/row_count"].value == 3

    with store.open("w"):  # b's audio changed, d is new, c is gone
        changed = root_rows(["b", "d"]).with_columns(
            metaxy_provenance_by_field=pl.Series([{"value": "changed"}, {"value": "h-d"}])
        )
        store.write(features["upstream"], changed)
        store.delete(features["upstream"], filters=["id = 'c'"], soft=False)
    result = dg.materialize(checks, resources=resources, instance=instance, selection=dg.AssetSelection.checks(*checks))
    evaluations = _evaluations(result)
    up_to_date, orphans = evaluations["metaxy_up_to_date"], evaluations["metaxy_no_orphans"]
    assert not up_to_date.passed and not orphans.passed
    counts = {k: up_to_date.metadata[f"metaxy/{k}"].value for k in ("new", "stale", "orphaned")}
    assert counts == {"new": 1, "stale": 1, "orphaned": 1}
    assert up_to_date.metadata["metaxy/example_stale"].value == "b"
    assert orphans.metadata["metaxy/example_orphaned"].value == "c"
    assert up_to_date.severity == dg.AssetCheckSeverity.WARN


def test_blocking_up_to_date_check_and_custom_store_key(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    assets = _assets(features)
    (check,) = mxd.build_metaxy_asset_checks(
        assets, store_resource_key="metaxy", blocking=True, severity=dg.AssetCheckSeverity.ERROR
    )
    specs = {spec.name: spec for spec in check.check_specs}
    assert specs["metaxy_up_to_date"].blocking and not specs["metaxy_no_orphans"].blocking
    result = dg.materialize([*assets, check], resources={**resources, "metaxy": resources["store"]}, instance=instance)
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_check_results_inline_in_an_asset(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    @mxd.metaxify(feature=features["downstream"])
    @dg.asset(check_specs=mxd.build_metaxy_check_specs("downstream"))  # metaxify moves them to the feature key
    def downstream(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("w"):
            store.write(features["upstream"], root_rows(["a", "b"]))
            new = store.resolve_update(features["downstream"]).new.to_polars()
            store.write(features["downstream"], new.head(1).with_columns(doubled=pl.lit(0, pl.Int64)))
        checks = mxd.metaxy_check_results(store, features["downstream"], DOWN)
        yield from mxd.generate_materialize_results(context, store, check_results=checks)

    result = dg.materialize([downstream], resources=resources, instance=instance)
    evaluations = _evaluations(result)
    assert not evaluations["metaxy_up_to_date"].passed  # one of two samples written
    assert evaluations["metaxy_up_to_date"].metadata["metaxy/new"].value == 1


def test_checks_of_a_root_feature_are_refused(features: dict[str, Any], store: mx.MetadataStore) -> None:
    with pytest.raises(mxd.MetaxyDagsterError, match="is a root feature"):
        mxd.metaxy_check_results(store, features["upstream"], UP)
    with pytest.raises(TypeError, match="Expected AssetsDefinition or AssetSpec"):
        mxd.build_metaxy_asset_checks(["test/upstream"])


def test_checks_fail_clearly_when_the_upstream_was_never_written(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    (check,) = mxd.build_metaxy_asset_checks(_assets(features))
    result = dg.materialize([check], resources=resources, instance=instance, selection=dg.AssetSelection.checks(check))
    evaluations = _evaluations(result)
    for name in ("metaxy_up_to_date", "metaxy_no_orphans"):  # a failed check with the reason, not a crash
        assert not evaluations[name].passed
        assert "Upstream not materialized at its current feature version: 'test/upstream'" in (
            evaluations[name].description or ""
        )
