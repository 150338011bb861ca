"""Packaging and configuration a user moving over from the published docs relies on: the
published extras exist (and no extra promises an integration that is not built), and a
``pathlib.Path`` is accepted wherever a store takes a path."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import polars as pl
import pytest

import metaxy as mx
from metaxy.config import MetaxyConfig, StoreConfig
from metaxy.errors import InvalidConfigError
from metaxy.ext.duckdb import DuckDBMetadataStore, DuckDBMetadataStoreConfig, ExtensionSpec
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore, DeltaMetadataStoreConfig

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# extra -> the module it makes usable (None: the extra adds nothing the core lacks)
EXTRAS: dict[str, str | None] = {
    "duckdb": "metaxy.ext.duckdb",
    "map": None,
    "delta": "metaxy.ext.polars.handlers.delta",
    "postgresql": "metaxy.ext.postgresql",
    "clickhouse": "metaxy.ext.clickhouse",
    "iceberg": "metaxy.ext.polars.handlers.iceberg",
    "lancedb": "metaxy.ext.lancedb",
    "dagster": "metaxy.ext.dagster",
    "demo": "metaxy._demo",
    "ray": "metaxy.ext.ray",
    "dev": None,
    "all": None,
}


def _project() -> dict[str, object]:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def test_declared_extras_are_exactly_the_built_ones() -> None:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    assert set(extras) == set(EXTRAS)
    for module in filter(None, EXTRAS.values()):
        importlib.import_module(module)
    assert extras["all"] == ["metaxy[duckdb,map,dagster,demo,delta,iceberg,lancedb,postgresql,clickhouse,ray,dev]"]


def test_no_extra_for_an_integration_that_is_not_built() -> None:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    unbuilt = {"bigquery": "metaxy.ext.bigquery", "ibis": "metaxy.ext.ibis"}
    for name, module in unbuilt.items():
        assert name not in extras
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(module)


def _clips() -> type[mx.BaseFeature]:
    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="pp/clip", id_columns=["clip_id"])):
        clip_id: str

    return Clip


def _write_and_read(store: mx.MetadataStore, feature: type[mx.BaseFeature]) -> list[str]:
    with store.open("w"):
        samples = {"clip_id": ["a", "b"], "metaxy_provenance_by_field": [{"default": "1"}] * 2}
        store.write(feature, pl.DataFrame(samples))
        return sorted(store.read(feature).collect().to_polars()["clip_id"].to_list())


def test_path_objects_in_python_store_constructors(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clips()
    assert _write_and_read(DuckDBMetadataStore(tmp_path / "a.duckdb", auto_create_tables=True), clip) == ["a", "b"]
    assert _write_and_read(DeltaMetadataStore(root_path=tmp_path / "lake"), clip) == ["a", "b"]
    assert (tmp_path / "a.duckdb").is_file() and (tmp_path / "lake" / "pp" / "clip.delta").is_dir()
    assert DuckDBMetadataStoreConfig(database=tmp_path / "x.duckdb").database == tmp_path / "x.duckdb"
    assert DeltaMetadataStoreConfig(root_path=tmp_path / "y").root_path == tmp_path / "y"


def test_path_objects_in_metaxy_config(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clips()
    config = MetaxyConfig(
        auto_create_tables=True,
        stores={
            "dev": StoreConfig(type=DuckDBMetadataStore, config={"database": tmp_path / "cfg.duckdb"}),
            "lake": StoreConfig(
                type="metaxy.ext.polars.handlers.delta.DeltaMetadataStore", config={"root_path": tmp_path / "cfg-lake"}
            ),
        },
    )
    assert _write_and_read(config.get_store("dev"), clip) == ["a", "b"]
    assert _write_and_read(config.get_store("lake"), clip) == ["a", "b"]
    assert (tmp_path / "cfg.duckdb").is_file() and (tmp_path / "cfg-lake" / "pp" / "clip.delta").is_dir()
    assert f'database = "{tmp_path / "cfg.duckdb"}"' in config.to_toml()  # and it renders back as a string


def test_path_in_metaxy_toml_and_a_wrong_type_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "metaxy.toml").write_text(
        '[stores.dev]\ntype = "metaxy.ext.duckdb.DuckDBMetadataStore"\n'
        f'[stores.dev.config]\ndatabase = "{tmp_path / "t.duckdb"}"\n'
        '[stores.bad]\ntype = "metaxy.ext.duckdb.DuckDBMetadataStore"\n[stores.bad.config]\ndatabase = 12\n'
    )
    config = MetaxyConfig.load(tmp_path / "metaxy.toml")
    assert Path(config.get_store("dev").database) == tmp_path / "t.duckdb"
    with pytest.raises(InvalidConfigError, match=r"database"):
        config.get_store("bad")


def test_duckdb_extension_specs(tmp_path: Path) -> None:
    store = DuckDBMetadataStore(tmp_path / "e.duckdb", extensions=["json", ExtensionSpec(name="parquet")])
    assert store.extensions == ["json", "parquet"]
    from_config = DuckDBMetadataStore.from_config({"database": tmp_path / "e.duckdb", "extensions": [{"name": "json"}]})
    assert isinstance(from_config, DuckDBMetadataStore) and from_config.extensions == ["json"]
    with store.open("w"):  # both ship with the DuckDB wheel: loading needs no download
        assert store.list_features() == []
