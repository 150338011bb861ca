"""metaxify on ``@multi_asset`` (subsetting, mixed specs, check specs) and graph-backed assets."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import latest_metadata, materializations, root_rows, step_order

import metaxy as mx
import metaxy.ext.dagster as mxd

Features = dict[str, type[mx.BaseFeature]]
UP = dg.AssetKey(["test", "upstream"])
DOWN = dg.AssetKey(["test", "downstream"])


def _pipeline(**metaxify_kwargs: Any) -> dg.AssetsDefinition:
    """A subsettable multi-asset: two features (one internal dep), one plain asset, two checks."""

    @mxd.metaxify(**metaxify_kwargs)
    @dg.multi_asset(
        specs=[
            dg.AssetSpec("up", metadata={"metaxy/feature": "test/upstream"}, skippable=True),
            dg.AssetSpec("down", metadata={"metaxy/feature": "test/downstream"}, deps=["up"], skippable=True),
            dg.AssetSpec("other", kinds={"python"}, skippable=True),
        ],
        check_specs=[
            dg.AssetCheckSpec("up_ok", asset="up", description="rows exist", blocking=True),
            dg.AssetCheckSpec("other_ok", asset="other"),
        ],
        can_subset=True,
    )
    def pipeline(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Iterator[Any]:
        features = {key.path[-1]: key for key in context.selected_asset_keys}
        with store.open("w"):
            if "upstream" in features:
                store.write("test/upstream", root_rows(["a", "b", "c"]))
                yield dg.MaterializeResult(
                    asset_key=features["upstream"],
                    check_results=[
                        dg.AssetCheckResult(asset_key=features["upstream"], check_name="up_ok", passed=True)
                    ],
                )
            if "downstream" in features:
                new = store.resolve_update("test/downstream").new.to_polars()
                store.write("test/downstream", new.with_columns(doubled=pl.col("value") * 2))
                yield dg.MaterializeResult(asset_key=features["downstream"])
        for key in context.selected_asset_keys:
            if key.path[-1] == "other":
                yield dg.MaterializeResult(
                    asset_key=key,
                    check_results=[dg.AssetCheckResult(asset_key=key, check_name="other_ok", passed=True)],
                )

    return pipeline


def test_multi_asset_specs_are_enriched_per_feature(features: Features) -> None:
    pipeline = _pipeline()
    specs = pipeline.specs_by_key
    assert set(specs) == {UP, DOWN, dg.AssetKey("other")}
    assert [d.asset_key for d in specs[DOWN].deps] == [UP]
    assert "metaxy" in specs[UP].kinds and "metaxy" in specs[DOWN].kinds
    assert specs[dg.AssetKey("other")].kinds == {"python"}  # non-Metaxy spec untouched
    assert "metaxy/feature" not in specs[dg.AssetKey("other")].metadata
    # metaxify adds no input for the internal dep (Dagster has its own subset input for it)
    assert all(name.startswith("__subset_input__") for name in pipeline.keys_by_input_name)
    checks = {c.key: c for c in pipeline.check_specs}
    assert set(checks) == {dg.AssetCheckKey(UP, "up_ok"), dg.AssetCheckKey(dg.AssetKey("other"), "other_ok")}
    assert checks[dg.AssetCheckKey(UP, "up_ok")].description == "rows exist"
    assert checks[dg.AssetCheckKey(UP, "up_ok")].blocking


def test_key_prefix_moves_every_key_and_check(features: Features) -> None:
    pipeline = _pipeline(key_prefix="lake")
    assert set(pipeline.keys) == {
        dg.AssetKey(["lake", "test", "upstream"]),
        dg.AssetKey(["lake", "test", "downstream"]),
        dg.AssetKey(["lake", "other"]),
    }
    assert {c.asset_key for c in pipeline.check_specs} == {
        dg.AssetKey(["lake", "test", "upstream"]),
        dg.AssetKey(["lake", "other"]),
    }
    down = pipeline.specs_by_key[dg.AssetKey(["lake", "test", "downstream"])]
    assert [d.asset_key for d in down.deps] == [dg.AssetKey(["lake", "test", "upstream"])]


def test_key_or_feature_argument_on_a_multi_asset_is_rejected(features: Features) -> None:
    @dg.multi_asset(specs=[dg.AssetSpec("a"), dg.AssetSpec("b")])
    def two():  # type: ignore[no-untyped-def]
        ...

    with pytest.raises(ValueError, match="Cannot use `key` argument with multi-asset `two` that produces 2"):
        mxd.metaxify(key="x")(two)
    with pytest.raises(ValueError, match=r"Cannot use `feature` argument.*`two`"):
        mxd.metaxify(feature="test/upstream")(two)


def test_multi_asset_materializes_fully_and_as_a_subset(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    pipeline = _pipeline()
    result = dg.materialize([pipeline], resources=resources, instance=instance)
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {UP, DOWN, dg.AssetKey("other")}
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {"up_ok", "other_ok"}

    dg.materialize([pipeline], resources=resources, instance=instance, selection=[DOWN])
    assert len(materializations(instance, DOWN)) == 2
    assert len(materializations(instance, UP)) == 1


def test_single_asset_check_follows_the_new_key(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify
    @dg.asset(
        name="raw",
        metadata={"metaxy/feature": "test/upstream"},
        check_specs=[dg.AssetCheckSpec("has_rows", asset="raw")],
    )
    def raw() -> dg.MaterializeResult:
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])

    assert raw.check_keys == {dg.AssetCheckKey(UP, "has_rows")}
    result = dg.materialize([raw], resources={"io_manager": dg.InMemoryIOManager()}, instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.asset_key, evaluation.passed) == (UP, True)


# --- graph-backed assets -----------------------------------------------------------------------


@dg.op(out=dg.Out(io_manager_key="memory"))
def read_upstream(store: dg.ResourceParam[mx.MetadataStore]) -> pl.DataFrame:
    with store:
        return store.resolve_update("test/downstream").new.to_polars()


@dg.op
def double(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(doubled=pl.col("value") * 2)


@dg.graph
def a_doubled() -> Any:
    return double(read_upstream())


@pytest.mark.parametrize("named_by", ["metadata_by_output_name", "feature_argument"])
def test_graph_backed_asset_waits_for_its_upstream(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance, named_by: str
) -> None:
    """The graph's first op waits for the upstream feature's asset (G20 for graphs)."""
    if named_by == "metadata_by_output_name":
        graph_asset = mxd.metaxify(
            dg.AssetsDefinition.from_graph(
                a_doubled, metadata_by_output_name={"result": {"metaxy/feature": "test/downstream"}}
            )
        )
    else:
        graph_asset = mxd.metaxify(feature=features["downstream"])(dg.AssetsDefinition.from_graph(a_doubled))

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def z_upstream() -> mxd.MetaxyOutput:
        return root_rows(["a", "b", "c", "d"])

    assert graph_asset.key == DOWN
    assert graph_asset.keys_by_input_name == {"test__upstream": UP}
    result = dg.materialize(
        [graph_asset, z_upstream], resources={**resources, "memory": dg.InMemoryIOManager()}, instance=instance
    )
    assert step_order(result) == ["z_upstream", "a_doubled.read_upstream", "a_doubled.double"]
    md = latest_metadata(instance, DOWN)
    assert (md["dagster/row_count"], md["metaxy/materialized_in_run"]) == (4, 4)
    assert md["metaxy/feature"] == "test/downstream"


# The seed's subsettable graph (foo / bar / baz), with foo_asset and baz_asset as Metaxy features.


@dg.op(
    out={
        "bar_1": dg.Out(is_required=False, io_manager_key="memory"),
        "bar_2": dg.Out(is_required=False, io_manager_key="memory"),
    }
)
def bar(context: dg.OpExecutionContext) -> Iterator[dg.Output[int]]:
    # Unlike the seed says, Dagster 1.13 also narrows bar's selected outputs in a subset run.
    for name, value in (("bar_1", 1), ("bar_2", 2)):
        if name in context.selected_output_names:
            yield dg.Output(value, output_name=name)


@dg.op(
    out={
        "foo_1": dg.Out(is_required=False, io_manager_key="metaxy_io"),
        "foo_2": dg.Out(is_required=False, io_manager_key="memory"),
    }
)
def foo(context: dg.OpExecutionContext, bar_1: int) -> Iterator[dg.Output[Any]]:
    if "foo_1" in context.selected_output_names:
        yield dg.Output(root_rows(["a", "b"], value=[bar_1, bar_1 + 1]), output_name="foo_1")
    if "foo_2" in context.selected_output_names:
        yield dg.Output(bar_1 + 2, output_name="foo_2")


@dg.op(out=dg.Out(io_manager_key="metaxy_io"))
def baz(store: dg.ResourceParam[mx.MetadataStore], foo_2: int, bar_2: int) -> pl.DataFrame:
    with store:
        new = store.resolve_update("test/downstream").new.to_polars()
    return new.with_columns(doubled=pl.lit(foo_2 + bar_2))


@dg.graph(out={"foo_asset": dg.GraphOut(), "baz_asset": dg.GraphOut()})
def my_graph() -> dict[str, Any]:
    bar_1, bar_2 = bar()
    foo_1, foo_2 = foo(bar_1)
    return {"foo_asset": foo_1, "baz_asset": baz(foo_2, bar_2)}


def test_subsettable_graph_of_the_seed(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    graph_asset = mxd.metaxify(
        dg.AssetsDefinition.from_graph(
            my_graph,
            can_subset=True,
            metadata_by_output_name={
                "foo_asset": {"metaxy/feature": "test/upstream"},
                "baz_asset": {"metaxy/feature": "test/downstream"},
            },
        )
    )
    assert set(graph_asset.keys) == {UP, DOWN}
    assert [d.asset_key for d in graph_asset.specs_by_key[DOWN].deps] == [UP]
    run_resources = {
        "metaxy_io": resources["io_manager"],
        "store": resources["store"],
        "memory": dg.InMemoryIOManager(),
    }

    dg.materialize([graph_asset], resources=run_resources, instance=instance, selection=[UP])
    assert latest_metadata(instance, UP)["dagster/row_count"] == 2
    assert materializations(instance, DOWN) == []

    dg.materialize([graph_asset], resources=run_resources, instance=instance, selection=[DOWN])
    assert latest_metadata(instance, DOWN)["metaxy/materialized_in_run"] == 2
    assert len(materializations(instance, UP)) == 1
    with store:
        assert store.read("test/downstream").collect()["doubled"].to_list() == [5, 5]
