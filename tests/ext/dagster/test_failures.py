"""Failed samples through real Dagster runs: an asset records the samples it could not compute
(``mxd.record_failures``), its materialization carries ``metaxy/failed``, the ``metaxy_failures``
check fails above its threshold, and the next run does not retry them until they are reset."""

from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import materializations, root_rows

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.errors import MetadataSchemaError

DOWN = dg.AssetKey(["test", "downstream"])


def _assets(features: dict[str, Any], attempts: list[list[str]], crash_on: set[str]) -> list[dg.AssetsDefinition]:
    @mxd.metaxify(feature=features["upstream"])
    @dg.asset
    def upstream() -> mxd.MetaxyOutput:
        return root_rows(["a", "b", "c"])

    @mxd.metaxify(feature=features["downstream"])
    @dg.asset
    def downstream(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store:
            increment = store.resolve_update(features["downstream"])
        todo = pl.concat([increment.new.to_polars(), increment.stale.to_polars()])
        attempts.append(sorted(todo["id"].to_list()))
        crashed = todo.filter(pl.col("id").is_in(sorted(crash_on)))
        mxd.record_failures(
            context,
            store,
            features["downstream"],
            crashed.select("id", error=pl.lit("decoder crashed"), error_type=pl.lit("DecodeError")),
        )
        return todo.filter(~pl.col("id").is_in(sorted(crash_on))).with_columns(doubled=pl.col("value") * 2)

    return [upstream, downstream]


def _evaluations(result: Any) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_failed_samples_are_recorded_reported_checked_and_not_retried(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    attempts: list[list[str]] = []
    assets = _assets(features, attempts, crash_on={"b"})
    checks = mxd.build_metaxy_asset_checks(assets)
    assert {k.name for c in checks for k in c.check_keys} == {
        "metaxy_up_to_date",
        "metaxy_no_orphans",
        "metaxy_failures",
    }

    first = dg.materialize([*assets, *checks], resources=resources, instance=instance)
    assert first.success
    evaluations = _evaluations(first)
    failures = evaluations["metaxy_failures"]
    assert not failures.passed
    assert failures.metadata["metaxy/failed"].value == 1
    assert failures.metadata["metaxy/example_failed"].value == "b"
    assert evaluations["metaxy_up_to_date"].passed  # b is quarantined, not missing
    materialization = materializations(instance, DOWN)[-1]
    assert materialization.metadata["metaxy/failed"].value == 1
    with store:
        recorded = store.read_failures(features["downstream"])
    assert recorded["metaxy_materialization_id"].to_list() == [first.run_id]
    assert recorded["metaxy_error_type"].to_list() == ["DecodeError"]

    second = dg.materialize(assets, resources=resources, instance=instance, selection=[DOWN])
    assert second.success
    assert attempts == [["a", "b", "c"], []], "b is not retried while its inputs are unchanged"

    with store.open("w"):
        assert store.reset_failures(features["downstream"]) == 1
    fixed = _assets(features, attempts, crash_on=set())
    third = dg.materialize([*fixed, *mxd.build_metaxy_asset_checks(fixed)], resources=resources, instance=instance)
    assert attempts[-1] == ["b"]
    assert _evaluations(third)["metaxy_failures"].passed
    assert "metaxy/failed" not in materializations(instance, DOWN)[-1].metadata  # reset: no failures table


def test_failures_check_threshold_and_opt_out(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    assets = _assets(features, [], crash_on={"a", "c"})
    lenient = mxd.build_metaxy_asset_checks(assets, max_failed=2)
    result = dg.materialize([*assets, *lenient], resources=resources, instance=instance)
    check = _evaluations(result)["metaxy_failures"]
    assert check.passed and check.metadata["metaxy/failed"].value == 2
    strict = mxd.build_metaxy_asset_checks(assets, max_failed=1)
    result = dg.materialize(strict, resources=resources, instance=instance, selection=dg.AssetSelection.checks(*strict))
    assert not _evaluations(result)["metaxy_failures"].passed
    without = mxd.build_metaxy_asset_checks(assets, max_failed=None)
    assert {k.name for c in without for k in c.check_keys} == {"metaxy_up_to_date", "metaxy_no_orphans"}


def test_a_malformed_failures_frame_fails_the_step_and_records_nothing(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    @mxd.metaxify(feature=features["upstream"])
    @dg.asset
    def upstream() -> mxd.MetaxyOutput:
        return root_rows(["a"])

    @mxd.metaxify(feature=features["downstream"])
    @dg.asset(deps=[upstream])
    def downstream(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> None:
        mxd.record_failures(context, store, features["downstream"], pl.DataFrame({"id": ["zz"], "error": ["x"]}))

    with pytest.raises(MetadataSchemaError, match="not expected samples"):
        dg.materialize([upstream, downstream], resources=resources, instance=instance)
    with store:
        assert store.read_failures(features["downstream"]).height == 0
