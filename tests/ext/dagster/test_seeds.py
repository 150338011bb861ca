"""The Metaxy + Dagster seed document runs: both metaxify forms and the whole quick start, each in
one ``dagster.materialize`` call against a DuckDB store file and a real Dagster instance."""

from __future__ import annotations

import runpy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import defs_assets, latest_metadata, materializations, step_order

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.config import MetaxyConfig

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "example-dagster"


@pytest.fixture
def quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The quick start module, run from a copy of its directory (its DuckDB file lands there)."""
    shutil.copy(EXAMPLE / "metaxy.toml", tmp_path / "metaxy.toml")
    monkeypatch.chdir(tmp_path)
    with mx.FeatureGraph().use() as graph:
        namespace = runpy.run_path(
            str(EXAMPLE / "src" / "example_dagster" / "definitions.py"), run_name="example_dagster.definitions"
        )
        namespace["graph"] = graph
        yield namespace
    MetaxyConfig.reset()


def test_quickstart_materializes_upstream_first_in_one_run(
    quickstart: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    defs: dg.Definitions = quickstart["defs"]
    with MetaxyConfig.load(Path("metaxy.toml")).use():  # the config mx.init() loaded
        result = dg.materialize(defs_assets(defs), resources=defs.resources, instance=instance)

    # "audio_clusters" sorts before "audio_embeddings": only the injected dep orders them (G20).
    assert step_order(result) == ["audio_embeddings", "audio_clusters", "cluster_report"]
    assert result.output_for_node("cluster_report") == {0: 2, 1: 2, 2: 2}
    embeddings = latest_metadata(instance, ["audio", "embeddings"])
    clusters = latest_metadata(instance, ["audio", "clusters"])
    assert (embeddings["dagster/row_count"], embeddings["metaxy/materialized_in_run"]) == (6, 6)
    assert (clusters["dagster/row_count"], clusters["metaxy/materialized_in_run"]) == (6, 6)
    assert clusters["metaxy/feature"] == "audio/clusters"
    assert clusters["dagster/table_name"] == "audio__clusters"
    assert Path(clusters["dagster/uri"]).name == "metadata.duckdb"


def test_quickstart_second_run_processes_nothing_new(quickstart: dict[str, Any], instance: dg.DagsterInstance) -> None:
    defs: dg.Definitions = quickstart["defs"]
    with MetaxyConfig.load(Path("metaxy.toml")).use():
        dg.materialize(defs_assets(defs), resources=defs.resources, instance=instance)
        dg.materialize(defs_assets(defs), resources=defs.resources, instance=instance)
    runs = materializations(instance, ["audio", "clusters"])
    assert len(runs) == 2
    last = {k: getattr(v, "value", v) for k, v in runs[-1].metadata.items()}
    assert (last["dagster/row_count"], last["metaxy/materialized_in_run"]) == (6, 0)


def test_quickstart_assets_carry_the_feature(quickstart: dict[str, Any]) -> None:
    clusters: dg.AssetsDefinition = quickstart["audio_clusters"]
    embeddings: dg.AssetsDefinition = quickstart["audio_embeddings"]
    assert embeddings.key == dg.AssetKey(["audio", "embeddings"])
    spec = clusters.specs_by_key[dg.AssetKey(["audio", "clusters"])]
    assert [d.asset_key for d in spec.deps] == [dg.AssetKey(["audio", "embeddings"])]
    assert spec.description == "Cluster the clips whose embeddings are new or changed."  # the asset's own docstring
    assert (
        embeddings.specs_by_key[embeddings.key].description
        == "Embed the audio clips that are new or changed since the last run."
    )
    assert spec.tags["metaxy/feature"] == "audio__clusters"
    assert spec.tags["metaxy/project"] == "example_dagster"
    assert "metaxy" in spec.kinds
    # the regular downstream asset reads the Metaxy feature under its new key
    report: dg.AssetsDefinition = quickstart["cluster_report"]
    assert set(report.keys_by_input_name.values()) == {dg.AssetKey(["audio", "clusters"])}


def test_seed_metaxify_forms_in_one_run(
    graph: mx.FeatureGraph, config: MetaxyConfig, instance: dg.DagsterInstance, resources: dict[str, Any]
) -> None:
    """``@mxd.metaxify(feature=MyFeature)`` and ``@mx.metaxify`` + ``"metaxy/feature"`` metadata."""
    del config

    class MyFeature(mx.BaseFeature, spec=mx.FeatureSpec(key="my/feature", id_columns=["id"])):
        """My feature."""

        id: str

    class MyMetaxyFeature(
        mx.BaseFeature, spec=mx.FeatureSpec(key="my/metaxy/feature", id_columns=["id"], deps=[MyFeature])
    ):
        id: str

    @mxd.metaxify(feature=MyFeature)
    @dg.asset
    def my_asset(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        samples = pl.DataFrame({"id": ["a", "b"], "metaxy_provenance_by_field": [{"default": "1"}, {"default": "2"}]})
        with store.open("w"):
            store.write(MyFeature, store.resolve_update(MyFeature, samples=samples).new)
        return None  # written above; the IO manager only describes it

    @mx.metaxify
    @dg.asset(metadata={"metaxy/feature": "my/metaxy/feature"})
    def my_other_asset(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        with store:
            return store.resolve_update(MyMetaxyFeature).new.to_polars()

    result = dg.materialize([my_other_asset, my_asset], resources=resources, instance=instance)

    assert step_order(result) == ["my_asset", "my_other_asset"]
    assert my_asset.key == dg.AssetKey(["my", "feature"])
    assert my_other_asset.key == dg.AssetKey(["my", "metaxy", "feature"])
    assert latest_metadata(instance, ["my", "feature"])["dagster/row_count"] == 2
    assert latest_metadata(instance, ["my", "metaxy", "feature"])["metaxy/materialized_in_run"] == 2
