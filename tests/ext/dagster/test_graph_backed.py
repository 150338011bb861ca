"""Graph-backed assets with Metaxy features behind them: the seed's examples, subsetting (G1)."""

from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import event_types, latest_metadata, latest_tags, step_error

import metaxy as mx
import metaxy.ext.dagster as mxd

FOO, BAZ = dg.AssetKey(["g", "foo"]), dg.AssetKey(["g", "baz"])


@pytest.fixture
def feats(graph: mx.FeatureGraph) -> dict[str, type[mx.BaseFeature]]:
    class Source(mx.BaseFeature, spec=mx.FeatureSpec(key="g/source", id_columns=["id"])):
        id: str

    class Foo(mx.BaseFeature, spec=mx.FeatureSpec(key="g/foo", id_columns=["id"], deps=[Source])):
        id: str

    class Baz(mx.BaseFeature, spec=mx.FeatureSpec(key="g/baz", id_columns=["id"], deps=[Foo])):
        id: str

    return {"source": Source, "foo": Foo, "baz": Baz}


def _seed_source(store: mx.MetadataStore, feats: dict[str, Any], n: int = 3) -> None:
    ids = [f"s{i}" for i in range(n)]
    with store.open("w"):
        store.write(
            feats["source"], pl.DataFrame({"id": ids, "metaxy_provenance_by_field": [{"default": i} for i in ids]})
        )


def _compute(store: mx.MetadataStore, feature: Any) -> int:
    """The op's real work: write the feature's new and stale samples."""
    with store.open("w"):
        increment = store.resolve_update(feature)
        return store.write(feature, pl.concat([increment.new.to_polars(), increment.stale.to_polars()]))


def _meta(feature: str) -> dict[str, Any]:
    return {"metaxy/feature": feature}


def test_single_output_graph_asset(
    feats: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _seed_source(store, feats)

    @dg.op(out={"result": dg.Out()}, required_resource_keys={"store"})
    def compute_foo(context: dg.OpExecutionContext) -> Any:
        _compute(context.resources.store, feats["foo"])
        yield from mxd.generate_outputs(context, context.resources.store)

    @dg.graph
    def foo_graph() -> Any:
        return compute_foo()

    asset = mxd.metaxify(dg.AssetsDefinition.from_graph(foo_graph, metadata_by_output_name={"result": _meta("g/foo")}))
    assert asset.key == FOO
    result = dg.materialize([asset], resources={"store": resources["store"]}, instance=instance)
    assert event_types(result, "ASSET_MATERIALIZATION") == ["g/foo"]
    assert latest_metadata(instance, FOO)["dagster/row_count"] == 3
    assert (
        latest_tags(instance, FOO)["dagster/data_version"]
        == mxd.compute_feature_stats(store, feats["foo"]).data_version.value
    )


def test_multiple_outputs_with_explicit_keys_by_output_and_input_name(
    feats: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _seed_source(store, feats, n=4)

    @dg.op(out={"one": dg.Out(), "two": dg.Out()}, required_resource_keys={"store"})
    def two_outputs(context: dg.OpExecutionContext, zero: Any) -> Any:
        store = context.resources.store
        _compute(store, feats["foo"])
        _compute(store, feats["baz"])
        yield from mxd.generate_outputs(context, store)

    @dg.graph(out={"one": dg.GraphOut(), "two": dg.GraphOut()})
    def return_one_and_two(zero: Any) -> Any:
        one, two = two_outputs(zero)
        return {"one": one, "two": two}

    @dg.asset(key=["upstream_asset"])
    def upstream_asset() -> int:
        return 0

    explicit = dg.AssetsDefinition.from_graph(
        return_one_and_two,
        keys_by_input_name={"zero": dg.AssetKey("upstream_asset")},
        keys_by_output_name={"one": FOO, "two": BAZ},
        metadata_by_output_name={"one": _meta("g/foo"), "two": _meta("g/baz")},
    )
    asset = mxd.metaxify(explicit)
    result = dg.materialize([upstream_asset, asset], resources={"store": resources["store"]}, instance=instance)
    assert event_types(result, "ASSET_MATERIALIZATION") == ["upstream_asset", "g/foo", "g/baz"]
    assert latest_metadata(instance, FOO)["dagster/row_count"] == 4
    assert latest_metadata(instance, BAZ)["dagster/row_count"] == 4
    assert dg.AssetKey("upstream_asset") in asset.asset_deps[FOO]


def _subsettable(feats: dict[str, Any], ran: list[str]) -> dg.AssetsDefinition:
    """The seed's ``foo``/``bar``/``baz`` graph: ``foo_asset`` = ``g/foo``, ``baz_asset`` = ``g/baz``."""

    @dg.op(out={"bar_1": dg.Out(), "bar_2": dg.Out()})
    def bar(context: dg.OpExecutionContext) -> Any:
        ran.append("bar")
        # Dagster 1.13 restricts bar to the outputs the subset needs; generate_outputs yields just those.
        yield from mxd.generate_outputs(context, None, {"bar_1": 1, "bar_2": 2})

    @dg.op(
        out={"foo_1": dg.Out(is_required=False), "foo_2": dg.Out(is_required=False)}, required_resource_keys={"store"}
    )
    def foo(context: dg.OpExecutionContext, bar_1: int) -> Any:
        ran.append("foo")
        store = context.resources.store
        if "foo_1" in context.selected_output_names:
            _compute(store, feats["foo"])
        yield from mxd.generate_outputs(context, store, {"foo_2": bar_1 + 2})

    @dg.op(required_resource_keys={"store"})
    def baz(context: dg.OpExecutionContext, foo_2: int, bar_2: int) -> Any:
        ran.append("baz")
        store = context.resources.store
        _compute(store, feats["baz"])
        yield from mxd.generate_outputs(context, store)

    @dg.graph(out={"foo_asset": dg.GraphOut(), "baz_asset": dg.GraphOut()})
    def my_graph() -> Any:
        bar_1, bar_2 = bar()
        foo_1, foo_2 = foo(bar_1)
        return {"foo_asset": foo_1, "baz_asset": baz(foo_2, bar_2)}

    return mxd.metaxify(
        dg.AssetsDefinition.from_graph(
            my_graph,
            can_subset=True,
            metadata_by_output_name={"foo_asset": _meta("g/foo"), "baz_asset": _meta("g/baz")},
        )
    )


@pytest.mark.parametrize(
    ("selection", "expected", "ops"),
    [
        ([FOO], ["g/foo"], ["bar", "foo"]),
        ([BAZ], ["g/baz"], ["bar", "foo", "baz"]),
        (None, ["g/foo", "g/baz"], ["bar", "foo", "baz"]),
    ],
)
def test_subsettable_graph_materializes_exactly_the_selection(
    feats: dict[str, Any],
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    store: mx.MetadataStore,
    selection: list[dg.AssetKey] | None,
    expected: list[str],
    ops: list[str],
) -> None:
    _seed_source(store, feats)
    if selection == [BAZ]:  # baz needs foo's rows, as after an earlier run
        _compute(store, feats["foo"])
    ran: list[str] = []
    asset = _subsettable(feats, ran)
    result = dg.materialize([asset], resources={"store": resources["store"]}, instance=instance, selection=selection)
    assert result.success
    assert event_types(result, "ASSET_MATERIALIZATION") == expected
    assert ran == ops
    for key in expected:
        feature = feats[key.split("/")[1]]
        stats = mxd.compute_feature_stats(store, feature)
        asset_key = dg.AssetKey(key.split("/"))
        assert latest_tags(instance, asset_key)["dagster/data_version"] == stats.data_version.value
        assert latest_metadata(instance, asset_key)["metaxy/materialized_in_run"] == (3 if key in expected else 0)
    with store:
        assert store.has_feature(feats["baz"]) == (BAZ in (selection or [FOO, BAZ]))


def test_generate_outputs_rejects_unknown_output_names(
    feats: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.op(out={"result": dg.Out()})
    def typo(context: dg.OpExecutionContext) -> Any:
        yield from mxd.generate_outputs(context, None, {"reslt": 1})

    @dg.job
    def job() -> None:
        typo()

    result = job.execute_in_process(instance=instance, raise_on_error=False)
    error = step_error(result, "typo")
    assert "has no output(s) ['reslt']" in error


def test_materialize_results_in_a_graph_op_report_only_its_own_selected_assets(
    feats: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    """``generate_materialize_results`` inside a graph op: its assets only, even though the graph has two."""
    _seed_source(store, feats)

    @dg.op(out={"foo_out": dg.Out(dg.Nothing)}, required_resource_keys={"store"})
    def make_foo(context: dg.OpExecutionContext) -> Any:
        _compute(context.resources.store, feats["foo"])
        yield from mxd.generate_materialize_results(context, context.resources.store)

    @dg.op(out={"baz_out": dg.Out(dg.Nothing)}, ins={"after": dg.In(dg.Nothing)}, required_resource_keys={"store"})
    def make_baz(context: dg.OpExecutionContext) -> Any:
        _compute(context.resources.store, feats["baz"])
        yield from mxd.generate_materialize_results(context, context.resources.store)

    @dg.graph(out={"foo_asset": dg.GraphOut(), "baz_asset": dg.GraphOut()})
    def pair() -> Any:
        foo_out = make_foo()
        return {"foo_asset": foo_out, "baz_asset": make_baz(after=foo_out)}

    asset = mxd.metaxify(
        dg.AssetsDefinition.from_graph(
            pair, metadata_by_output_name={"foo_asset": _meta("g/foo"), "baz_asset": _meta("g/baz")}
        )
    )
    result = dg.materialize([asset], resources={"store": resources["store"]}, instance=instance)
    assert result.success
    assert event_types(result, "ASSET_MATERIALIZATION") == ["g/foo", "g/baz"]
    assert latest_metadata(instance, BAZ)["dagster/row_count"] == 3


def test_graph_output_value_for_another_io_manager_keeps_metaxy_metadata(
    feats: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _seed_source(store, feats)

    @dg.op(out={"result": dg.Out(io_manager_key="models")}, required_resource_keys={"store"})
    def train(context: dg.OpExecutionContext) -> Any:
        _compute(context.resources.store, feats["foo"])
        yield from mxd.generate_outputs(context, context.resources.store, {"result": {"weights": [1]}})

    @dg.graph
    def model() -> Any:
        return train()

    asset = mxd.metaxify(dg.AssetsDefinition.from_graph(model, metadata_by_output_name={"result": _meta("g/foo")}))
    resources_ = {"store": resources["store"], "models": dg.mem_io_manager}
    assert dg.materialize([asset], resources=resources_, instance=instance).success
    assert latest_metadata(instance, FOO)["dagster/row_count"] == 3
    tags = latest_tags(instance, FOO)
    assert tags["dagster/data_version"] == mxd.compute_feature_stats(store, feats["foo"]).data_version.value


def test_required_unselected_outputs_of_a_plain_subsettable_graph_fail_with_a_hint(
    feats: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.op(out={"a": dg.Out(), "b": dg.Out()})
    def two(context: dg.OpExecutionContext) -> Any:
        yield from mxd.generate_outputs(context, None, {"a": 1, "b": 2})

    @dg.graph(out={"a_asset": dg.GraphOut(), "b_asset": dg.GraphOut()})
    def pair() -> Any:
        a, b = two()
        return {"a_asset": a, "b_asset": b}

    not_metaxified = dg.AssetsDefinition.from_graph(pair, can_subset=True)
    result = dg.materialize(
        [not_metaxified], instance=instance, selection=[dg.AssetKey("a_asset")], raise_on_error=False
    )
    error = step_error(result, "pair.two")
    assert "['b'] are required" in error and "metaxify the graph-backed asset" in error


def test_check_results_in_a_graph_op_are_refused(
    feats: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    _seed_source(store, feats)

    @dg.op(out={"foo_out": dg.Out(dg.Nothing)}, required_resource_keys={"store"})
    def make_foo(context: dg.OpExecutionContext) -> Any:
        check = dg.AssetCheckResult(asset_key=FOO, check_name="c", passed=True)
        yield from mxd.generate_materialize_results(context, context.resources.store, check_results=[check])

    @dg.graph(out={"foo_asset": dg.GraphOut()})
    def single() -> Any:
        return {"foo_asset": make_foo()}

    asset = mxd.metaxify(dg.AssetsDefinition.from_graph(single, metadata_by_output_name={"foo_asset": _meta("g/foo")}))
    result = dg.materialize([asset], resources={"store": resources["store"]}, instance=instance, raise_on_error=False)
    error = step_error(result, "single.make_foo")
    assert "check_results need an @asset or @multi_asset" in error
