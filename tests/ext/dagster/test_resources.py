"""MetaxyStoreFromConfigResource: the configured default store, run ids, use outside runs."""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import latest_metadata, root_rows, store_config

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.errors import InvalidConfigError

Features = dict[str, type[mx.BaseFeature]]


def _other_default(tmp_path: Path) -> Any:
    """A config whose default store is ``other`` (not ``dev``)."""
    config = store_config(
        tmp_path,
        other={"type": "metaxy.ext.duckdb.DuckDBMetadataStore", "config": {"database": str(tmp_path / "other.duckdb")}},
    )
    return config.model_copy(update={"store": "other"})


def test_default_store_is_the_configured_one(
    graph: mx.FeatureGraph, features: Features, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """G15: ``name=None`` and ``MetaxyIOManager()`` use the configured default store, not "dev"."""

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        assert store.name == "other"
        return root_rows(["a", "b"])

    with _other_default(tmp_path).use() as config:
        dg.materialize(
            [upstream],
            resources={"store": mxd.MetaxyStoreFromConfigResource(), "io_manager": mxd.MetaxyIOManager()},
            instance=instance,
        )
        assert latest_metadata(instance, upstream.key)["metaxy/store"] == config.get_store("other").display()
        other = config.get_store("other")
        with other:
            assert len(other.read(features["upstream"]).collect()) == 2
        dev = config.get_store("dev")
        with dev:
            assert not dev.has_feature(features["upstream"])


def test_materialization_id_is_the_run_id(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    seen: dict[str, Any] = {}

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        seen["id"] = store.materialization_id
        return root_rows(["a", "b"])

    result = dg.materialize([upstream], resources=resources, instance=instance)
    assert seen["id"] == result.run_id
    with store:
        ids = store.read(features["upstream"]).collect()["metaxy_materialization_id"].to_list()
    assert ids == [result.run_id, result.run_id]


def test_resource_annotated_with_its_class_receives_the_store(
    config: Any, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.asset(io_manager_key="memory")
    def which(store: mxd.MetaxyStoreFromConfigResource) -> str:
        assert isinstance(store, mx.MetadataStore)
        return type(store).__name__

    result = dg.materialize(
        [which], resources={"store": resources["store"], "memory": dg.InMemoryIOManager()}, instance=instance
    )
    assert result.output_for_node("which") == "DuckDBMetadataStore"


def test_usable_outside_a_run(features: Features, config: Any) -> None:
    resource = mxd.MetaxyStoreFromConfigResource(name="dev")
    with dg.build_resources({"store": resource}) as built:
        store = built.store
        assert isinstance(store, mx.MetadataStore)
        assert store.materialization_id is None
        with store.open("w"):
            store.write(features["upstream"], root_rows(["a"]))

    @dg.sensor(target=dg.AssetSelection.all())
    def count_sensor(store: dg.ResourceParam[mx.MetadataStore]) -> dg.SkipReason:
        with store:
            return dg.SkipReason(f"{len(store.read('test/upstream').collect())} rows")

    skip = count_sensor(dg.build_sensor_context(resources={"store": resource}))
    assert isinstance(skip, dg.SkipReason) and skip.skip_message == "1 rows"
    assert resource.get_store().name == "dev"


def test_unknown_store_name(config: Any) -> None:
    with pytest.raises(InvalidConfigError, match=r"Store 'nope' is not configured.*dev"):
        mxd.MetaxyStoreFromConfigResource(name="nope").get_store()


def test_io_manager_resolves_its_store_when_used_directly(features: Features, config: Any) -> None:
    manager = mxd.MetaxyIOManager()
    store = manager.metadata_store
    assert store.name == "dev"
    with store.open("w"):
        store.write(features["upstream"], pl.DataFrame(root_rows(["z"])))
