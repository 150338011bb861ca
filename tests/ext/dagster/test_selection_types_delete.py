"""select_metaxy_assets, feature_to_dagster_type, the delete op, the public names (spec §1, §13)."""

from typing import Any

import dagster as dg
import pytest
from mxd_helpers import failure_text, root_rows, step_error

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.config import MetaxyConfig

UP = dg.AssetKey(["test", "upstream"])
DOWN = dg.AssetKey(["test", "downstream"])


def test_select_metaxy_assets_by_project_and_feature(graph: mx.FeatureGraph, config: MetaxyConfig) -> None:
    class Tagged(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="sel/tagged", id_columns=["id"], metadata={"dagster/attributes": {"tags": {"team": "x"}}}
        ),
    ):
        __metaxy_project__ = "test"  # the configured project (features default to their top-level package)
        id: str

    class Other(mx.BaseFeature, spec=mx.FeatureSpec(key="sel/other", id_columns=["id"])):
        __metaxy_project__ = "test"
        id: str

    class Elsewhere(mx.BaseFeature, spec=mx.FeatureSpec(key="sel/elsewhere", id_columns=["id"])):
        __metaxy_project__ = "elsewhere"
        id: str

    tagged = mxd.metaxify(dg.AssetSpec("t", metadata={"metaxy/feature": "sel/tagged"}))
    other = mxd.metaxify(dg.AssetSpec("o", metadata={"metaxy/feature": "sel/other"}))
    elsewhere = mxd.metaxify(dg.AssetSpec("e", metadata={"metaxy/feature": "sel/elsewhere"}))
    plain = dg.AssetSpec("plain")
    defs = dg.Definitions(assets=[tagged, other, elsewhere, plain])
    graph_ = defs.resolve_asset_graph()

    def resolve(selection: dg.AssetSelection) -> set[str]:
        return {k.to_user_string() for k in selection.resolve(graph_, allow_missing=True)}

    assert tagged.tags["team"] == "x"  # the feature's own tags are merged, not replacing metaxy's (G6)
    assert resolve(mxd.select_metaxy_assets()) == {"sel/tagged", "sel/other"}  # configured project "test"
    assert resolve(mxd.select_metaxy_assets(feature=Tagged)) == {"sel/tagged"}
    assert resolve(mxd.select_metaxy_assets(project="elsewhere")) == {"sel/elsewhere"}
    assert resolve(mxd.select_metaxy_assets(project="elsewhere", feature="sel/other")) == set()


def test_select_metaxy_assets_needs_a_project(graph: mx.FeatureGraph) -> None:
    with MetaxyConfig(project=None).use(), pytest.raises(mxd.MetaxyDagsterError, match="project must be specified"):
        mxd.select_metaxy_assets()


def test_feature_to_dagster_type(features: dict[str, Any]) -> None:
    up_type = mxd.feature_to_dagster_type(features["upstream"])
    assert up_type.key == "test__upstream"
    assert up_type.description == "Upstream feature with a value per sample."
    assert isinstance(up_type.metadata["dagster/column_schema"], dg.TableSchemaMetadataValue)
    assert "dagster/column_lineage" not in up_type.metadata  # a root feature has no lineage
    down_type = mxd.feature_to_dagster_type("test/downstream", name="down", description="custom")
    assert (down_type.key, down_type.description) == ("down", "custom")
    assert "dagster/column_lineage" in down_type.metadata
    bare = mxd.feature_to_dagster_type(features["upstream"], inject_column_schema=False, inject_column_lineage=False)
    assert "dagster/column_schema" not in bare.metadata and "metaxy/info" in bare.metadata

    frame = root_rows(["a"])
    for ok in (None, frame, frame.lazy(), frame.to_pandas(), frame.to_arrow()):
        assert dg.check_dagster_type(up_type, ok).success
    for bad in ("text", {"id": 1}, [1, 2]):
        check = dg.check_dagster_type(up_type, bad)
        assert not check.success and "test/upstream" in (check.description or "")
        assert type(bad).__name__ in (check.description or "")


def test_dagster_type_on_an_asset_output(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify(feature=features["upstream"])
    @dg.asset(dagster_type=mxd.feature_to_dagster_type(features["upstream"]))
    def upstream() -> Any:
        return "not a frame"

    result = dg.materialize([upstream], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "expects a dataframe" in failure_text(failure)


def _delete_job(resources: dict[str, Any]) -> dg.JobDefinition:
    @dg.job(resource_defs={"metaxy_store": resources["store"]})  # the key the published docs use
    def delete_job() -> None:
        mxd.delete()

    return delete_job


@pytest.mark.parametrize(("soft", "with_deleted", "without"), [(True, 3, 2), (False, 2, 2)])
def test_delete_op_soft_and_hard(
    features: dict[str, Any],
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    store: mx.MetadataStore,
    soft: bool,
    with_deleted: int,
    without: int,
) -> None:
    with store.open("w"):
        store.write(features["upstream"], root_rows(["a", "b", "c"]))
    config = {
        "ops": {"delete": {"config": {"feature_key": ["test", "upstream"], "filters": ["id = 'b'"], "soft": soft}}}
    }
    result = _delete_job(resources).execute_in_process(instance=instance, run_config=config)
    assert result.output_for_node("delete") == 1
    with store:
        assert len(store.read(features["upstream"], include_soft_deleted=True).collect()) == with_deleted
        assert sorted(store.read(features["upstream"]).collect()["id"].to_list()) == ["a", "c"]
        assert len(store.read(features["upstream"]).collect()) == without


def test_delete_op_rejects_bad_config_and_bad_filters(
    features: dict[str, Any], resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    with store.open("w"):
        store.write(features["upstream"], root_rows(["a"]))
    job = _delete_job(resources)
    bad_key = {"ops": {"delete": {"config": {"feature_key": ["bad key!"]}}}}
    result = job.execute_in_process(instance=instance, run_config=bad_key, raise_on_error=False)
    error = step_error(result, "delete")
    assert "Invalid feature key ['bad key!']" in error
    injection = {"ops": {"delete": {"config": {"feature_key": ["test", "upstream"], "filters": ["1=1; DROP TABLE x"]}}}}
    result = job.execute_in_process(instance=instance, run_config=injection, raise_on_error=False)
    error = step_error(result, "delete")
    assert "FilterParseError" in error
    with store:
        assert len(store.read(features["upstream"]).collect()) == 1  # nothing lost


def test_public_names_of_the_integration() -> None:
    expected = {
        "generate_materialize_results",
        "generate_observe_results",
        "generate_outputs",
        "observable_metaxy_asset",
        "build_metaxy_observation_job",
        "build_metaxy_multi_observation_job",
        "build_metaxy_asset_checks",
        "select_metaxy_assets",
        "feature_to_dagster_type",
        "build_column_schema",
        "build_column_lineage",
        "build_table_preview_metadata",
        "FeatureStats",
        "delete",
        "DAGSTER_METAXY_PARTITION_METADATA_KEY",
    }
    assert expected <= set(mxd.__all__)
    assert sorted(mxd.__all__) == sorted(set(mxd.__all__)) and all(hasattr(mxd, name) for name in mxd.__all__)
    assert mxd.DAGSTER_METAXY_PARTITION_METADATA_KEY == "metaxy/partition"
    from metaxy.ext.dagster.utils import build_feature_info_metadata

    assert build_feature_info_metadata is mxd.build_feature_info_metadata
