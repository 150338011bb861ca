"""The PostgreSQL store from metaxy.toml's ``type`` path, with parameters instead of a URL."""

from __future__ import annotations

from typing import Any

import polars as pl

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.ext.postgresql import PostgreSQLMetadataStore


def test_store_from_config_type_path_with_parameters(postgres_cluster: Any) -> None:
    options = {
        "host": "127.0.0.1",
        "port": postgres_cluster.port,
        "user": postgres_cluster.user,
        "password": postgres_cluster.password,
        "dbname": postgres_cluster.dbname,
        "schema": "from_config",
        "table_prefix": "mx_",
        "connect_timeout": 5,
        "sslmode": "disable",
        "auto_create_tables": True,
    }
    config = MetaxyConfig(stores={"pg": {"type": "metaxy.ext.postgresql.PostgreSQLMetadataStore", "config": options}})
    assert postgres_cluster.password not in repr(config)
    with config.use():
        store = MetaxyConfig.get().get_store("pg")
    assert isinstance(store, PostgreSQLMetadataStore)
    assert postgres_cluster.password not in repr(store)

    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="cfg/clip", id_columns=["sample_id"], fields=["audio"])):
        sample_id: str

    with store.open("w"):
        store.write(Clip, pl.DataFrame({"sample_id": ["a"], "metaxy_provenance_by_field": [{"audio": "1"}]}))
        assert "mx_cfg__clip" in store._list_tables()
        assert store.read(Clip).collect().to_polars()["sample_id"].to_list() == ["a"]
