"""Call forms from the published documentation: generators with a hand-built ``dg.build_asset_context()``,
and the documented delete job with its ``metaxy_store`` resource."""

from typing import Any

import dagster as dg
import pytest
from mxd_helpers import root_rows

import metaxy as mx
import metaxy.ext.dagster as mxd

SPECS = [
    dg.AssetSpec("down", metadata={"metaxy/feature": "test/downstream"}),  # downstream first: reordered
    dg.AssetSpec("up", metadata={"metaxy/feature": "test/upstream"}),
    dg.AssetSpec("plain"),  # not a Metaxy asset: not reported
]


@pytest.mark.parametrize(
    ("generate", "result_type"),
    [(mxd.generate_materialize_results, dg.MaterializeResult), (mxd.generate_observe_results, dg.ObserveResult)],
)
def test_generators_with_a_hand_built_asset_context_report_every_given_spec(
    features: dict[str, Any], store: mx.MetadataStore, generate: Any, result_type: type
) -> None:
    with store.open("w"):
        store.write(features["upstream"], root_rows(["a", "b", "c"]))
    results = list(generate(dg.build_asset_context(), store, SPECS))
    assert [type(r) for r in results] == [result_type, result_type]
    assert [r.asset_key for r in results] == [dg.AssetKey("up"), dg.AssetKey("down")]
    up, down = ({k: getattr(v, "value", v) for k, v in (r.metadata or {}).items()} for r in results)
    assert up["dagster/row_count"] == 3 and results[0].data_version.value != "empty"
    assert down["dagster/row_count"] == 0 and "Feature not found" in down["metaxy/error"]
    assert results[0].tags["metaxy/feature"] == "test__upstream"


def test_a_hand_built_asset_context_without_specs_is_refused(features: dict[str, Any], store: mx.MetadataStore) -> None:
    with pytest.raises(mxd.MetaxyDagsterError, match="specs must be provided"):
        list(mxd.generate_materialize_results(dg.build_asset_context(), store))


def test_the_documented_delete_job_uses_the_metaxy_store_resource(
    features: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    with store.open("w"):
        store.write(features["upstream"], root_rows(["a", "b"]))

    @dg.job(resource_defs={"metaxy_store": mxd.MetaxyStoreFromConfigResource()})
    def delete_job() -> None:
        mxd.delete()

    config = {"ops": {"delete": {"config": {"feature_key": ["test", "upstream"], "filters": ["id = 'a'"]}}}}
    result = delete_job.execute_in_process(instance=instance, run_config=config)
    assert result.output_for_node("delete") == 1
    with store:
        assert store.read(features["upstream"]).collect()["id"].to_list() == ["b"]
