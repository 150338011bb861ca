"""How stores are wired together: configuration, pickling, fallback chains across backends,
versioning-engine selection, compute_provenance."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import PolarsMaterializationWarning, VersioningEngineMismatchError
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
from metaxy.metadata_store import InMemoryMetadataStore

pytestmark = pytest.mark.filterwarnings("ignore:Creating table")


def _define() -> tuple[type[mx.BaseFeature], type[mx.BaseFeature]]:
    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="w/raw", id_columns=["sid"], fields=["audio", "frames"])):
        sid: str

    class Down(mx.BaseFeature, spec=mx.FeatureSpec(key="w/down", id_columns=["sid"], deps=[Raw], fields=["audio"])):
        sid: str

    return Raw, Down


def _raw(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"sid": ids, "metaxy_provenance_by_field": [{"audio": f"a{i}", "frames": f"f{i}"} for i in ids]}
    )


def test_in_memory_store_pickles_with_its_data_and_comes_from_config(graph: mx.FeatureGraph) -> None:
    raw, _ = _define()
    cfg = mx.MetaxyConfig(
        stores={
            "mem": {"type": "metaxy.metadata_store.InMemoryMetadataStore", "config": {"hash_algorithm": "xxhash64"}}
        },
        store="mem",
    )
    store = cfg.get_store()
    assert isinstance(store, InMemoryMetadataStore) and store.hash_algorithm == mx.HashAlgorithm.XXHASH64
    with store.open("w"):
        store.write(raw, _raw(["a", "b"]))
    copy = pickle.loads(pickle.dumps(store))
    with copy.open("r"):
        assert sorted(copy.read(raw).collect().to_polars()["sid"]) == ["a", "b"]


@pytest.mark.parametrize("primary_kind", ["duckdb", "delta"])
def test_fallback_across_backends(tmp_path: Path, graph: mx.FeatureGraph, primary_kind: str) -> None:
    """A DuckDB primary with a Delta fallback, and the reverse: upstream from the fallback,
    downstream resolved and written in the primary."""
    raw, down = _define()
    duck = DuckDBMetadataStore(tmp_path / "d.duckdb", auto_create_tables=True)
    delta = DeltaMetadataStore(tmp_path / "lake")
    fallback, primary_cls = (delta, "duckdb") if primary_kind == "duckdb" else (duck, "delta")
    with fallback.open("w"):
        fallback.write(raw, _raw(["a", "b", "c"]))
    primary = (
        DuckDBMetadataStore(tmp_path / "p.duckdb", auto_create_tables=True, fallback_stores=[fallback])
        if primary_cls == "duckdb"
        else DeltaMetadataStore(tmp_path / "plake", fallback_stores=[fallback])
    )
    with primary.open("w"):
        frame, found_in = primary.read(raw, with_store_info=True)
        assert found_in is fallback and len(frame.collect()) == 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PolarsMaterializationWarning)
            inc = primary.resolve_update(down)
        assert len(inc.new) == 3
        primary.write(down, inc.new)
        assert not primary.has_feature(raw) and primary.has_feature(raw, check_fallback=True)
        assert (len(primary.resolve_update(down).new), len(primary.resolve_update(down).stale)) == (0, 0)


def test_fallback_chain_must_share_the_hash_algorithm(graph: mx.FeatureGraph) -> None:
    raw, _ = _define()
    store = InMemoryMetadataStore(
        hash_algorithm="md5", fallback_stores=[InMemoryMetadataStore(hash_algorithm="sha256")]
    )
    with store.open("r"), pytest.raises(ValueError, match="hash_algorithm"):
        store.read(raw)


def test_fallback_names_need_a_config_and_resolve_through_it(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    raw, _ = _define()
    mx.MetaxyConfig.reset()
    named = InMemoryMetadataStore(fallback_stores=["lake"])
    with mx.MetaxyConfig().use():
        mx.MetaxyConfig.reset()
    from metaxy.config import _model

    token = _model._context_config.set(None)  # no active config at all
    try:
        with named.open("r"), pytest.raises(ValueError, match="no MetaxyConfig provided"):
            named.read(raw)
    finally:
        _model._context_config.reset(token)
    lake = {
        "type": "metaxy.ext.polars.handlers.delta.DeltaMetadataStore",
        "config": {"root_path": str(tmp_path / "lake")},
    }
    cfg = mx.MetaxyConfig(
        stores={
            "lake": lake,
            "main": {"type": "metaxy.metadata_store.InMemoryMetadataStore", "config": {"fallback_stores": ["lake"]}},
        }
    )
    with cfg.use():
        with cfg.get_store("lake").open("w") as lake_store:
            lake_store.write(raw, _raw(["z"]))
        main = cfg.get_store("main")
        with main.open("r"):
            assert main.read(raw).collect().to_polars()["sid"].to_list() == ["z"]


def test_native_engine_is_refused_for_foreign_frames(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    raw, down = _define()
    store = DuckDBMetadataStore(tmp_path / "d.duckdb", auto_create_tables=True)
    with store.open("w"):
        with pytest.raises(VersioningEngineMismatchError, match="samples"):
            store.resolve_update(raw, samples=_raw(["a"]), versioning_engine="native")
        with pytest.warns(PolarsMaterializationWarning):
            inc = store.resolve_update(raw, samples=_raw(["a"]))
        assert len(inc.new) == 1
        store.write(raw, inc.new)
        with pytest.raises(VersioningEngineMismatchError, match="Polars expression"):
            store.resolve_update(down, versioning_engine="native", global_filters=[pl.col("sid") == "a"])
        polars_filtered = store.resolve_update(down, global_filters=[pl.col("sid") == "a"])
        sql_filtered = store.resolve_update(down, global_filters=["sid = 'a'"], versioning_engine="native")
        nw_filtered = store.resolve_update(down, global_filters=[nw.col("sid") == "a"])
    assert polars_filtered.new.to_polars().equals(sql_filtered.new.to_polars())
    assert nw_filtered.new.to_polars()["sid"].to_list() == ["a"]


def test_compute_provenance_matches_resolve(graph: mx.FeatureGraph) -> None:
    raw, down = _define()
    store = InMemoryMetadataStore()
    with store.open("w"):
        store.write(raw, _raw(["a", "b"]))
        expected = store.resolve_update(down).new.to_polars().sort("sid")
        upstream = (
            store.read(raw)
            .collect()
            .to_polars()
            .select("sid", pl.col("metaxy_data_version_by_field").alias("metaxy_data_version_by_field__w_raw"))
        )
        computed = store.compute_provenance(down, upstream).sort("sid")  # a Polars frame in, a Polars frame out
        with pytest.raises(ValueError, match="missing required upstream columns"):
            store.compute_provenance(down, upstream.drop("metaxy_data_version_by_field__w_raw"))
    assert computed["metaxy_provenance"].to_list() == expected["metaxy_provenance"].to_list()
    assert computed["metaxy_provenance_by_field"].to_list() == expected["metaxy_provenance_by_field"].to_list()


def test_warnings_name_the_callers_line(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    """However deep in metaxy a warning is raised, it points at the user's call."""
    raw, down = _define()
    store = DuckDBMetadataStore(tmp_path / "d.duckdb", auto_create_tables=True)
    with store.open("w"):
        with pytest.warns(UserWarning, match="Creating table") as created:
            store.write(raw, _raw(["a"]))
        with pytest.warns(PolarsMaterializationWarning) as fell_back:
            store.resolve_update(down, global_filters=[pl.col("sid") == "a"])
    assert {w.filename for w in [*created, *fell_back]} == {__file__}
