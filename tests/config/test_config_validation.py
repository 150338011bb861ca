"""Meaningless settings are refused when the configuration is made, with the setting's name, its
value, the ``METAXY_*`` variable it came from and a hint; writes to a read-only store are refused."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.errors import ConfigValidationError, InvalidConfigError, ReadOnlyStoreError
from metaxy.ext.duckdb import DuckDBMetadataStore

WriteFile = Callable[[str, str], Path]
DUCKDB = "metaxy.ext.duckdb.DuckDBMetadataStore"


def duckdb_store(tmp_path: Path, name: str = "dev", **options: Any) -> dict[str, Any]:
    return {"type": DUCKDB, "config": {"database": str(tmp_path / f"{name}.duckdb"), **options}}


def assert_typed_message(exc: BaseException, *fragments: str) -> None:
    """A metaxy config error whose message holds ``fragments`` and ends with a hint sentence."""
    assert isinstance(exc, InvalidConfigError)
    message = str(exc)
    for fragment in fragments:
        assert fragment in message, message
    assert "Hint:" in message and message.rstrip().endswith("."), message
    assert "\n" not in message


# --- versioning_engine ---------------------------------------------------------------------


def test_unknown_versioning_engine_is_refused_at_config_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(stores={"dev": duckdb_store(tmp_path, versioning_engine="gpu")})
    assert_typed_message(info.value, "`stores.dev.config.versioning_engine` = 'gpu'", "'auto', 'native', 'polars'")


def test_unknown_versioning_engine_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METAXY_STORES__DEV__TYPE", DUCKDB)
    monkeypatch.setenv("METAXY_STORES__DEV__CONFIG__VERSIONING_ENGINE", "gpu")
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig()
    assert_typed_message(info.value, "versioning_engine` = 'gpu'", "METAXY_STORES__DEV__CONFIG__VERSIONING_ENGINE")


def test_unknown_versioning_engine_is_refused_by_the_store_constructor() -> None:
    with pytest.raises(InvalidConfigError) as info:
        DuckDBMetadataStore(":memory:", versioning_engine="gpu")
    assert_typed_message(info.value, "`versioning_engine` = 'gpu'")


@pytest.mark.parametrize("engine", ["auto", "native", "polars"])
def test_known_versioning_engines_are_accepted(tmp_path: Path, engine: str) -> None:
    config = MetaxyConfig(stores={"dev": duckdb_store(tmp_path, versioning_engine=engine)})
    assert config.get_store("dev").versioning_engine == engine


# --- lock_timeout --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, "nan", "soon"])
def test_meaningless_lock_timeout_is_refused_at_config_time(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(stores={"dev": duckdb_store(tmp_path, lock_timeout=value)})
    assert_typed_message(info.value, "`stores.dev.config.lock_timeout` = ")
    assert repr(value) in str(info.value)


def test_nan_lock_timeout_in_the_file_is_refused(tmp_path: Path, write_file: WriteFile) -> None:
    path = write_file(
        "metaxy.toml",
        f'[stores.dev]\ntype = "{DUCKDB}"\n[stores.dev.config]\ndatabase = "{tmp_path / "d.duckdb"}"\n'
        "lock_timeout = nan\n",
    )
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig.load(path)
    assert_typed_message(info.value, "lock_timeout` = nan", str(path))


def test_nan_lock_timeout_is_refused_by_the_store_constructor(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as info:
        DuckDBMetadataStore(tmp_path / "d.duckdb", lock_timeout=math.nan)
    assert_typed_message(info.value, "`lock_timeout` = nan")


def test_lock_timeout_zero_and_positive_are_accepted(tmp_path: Path) -> None:
    config = MetaxyConfig(
        stores={"a": duckdb_store(tmp_path, "a", lock_timeout=0), "b": duckdb_store(tmp_path, "b", lock_timeout=2.5)}
    )
    assert config.get_store("a").lock_timeout == 0
    assert config.get_store("b").lock_timeout == 2.5


# --- hash_truncation_length ----------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 7, 65, 1000])
def test_out_of_range_hash_truncation_length_is_refused(length: int) -> None:
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(hash_truncation_length=length)
    assert isinstance(info.value, ValidationError)  # pydantic's type still catches it
    bound = "greater than or equal to 8" if length < 8 else "less than or equal to 64"
    assert_typed_message(info.value, f"`hash_truncation_length` = {length}", bound)


def test_hash_truncation_length_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_HASH_TRUNCATION_LENGTH", "4")
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig()
    assert_typed_message(info.value, "`hash_truncation_length` = '4'", "METAXY_HASH_TRUNCATION_LENGTH")


@pytest.mark.parametrize("length", [8, 32, 64])
def test_hash_truncation_length_in_range_is_accepted(length: int) -> None:
    assert MetaxyConfig(hash_truncation_length=length).hash_truncation_length == length


def test_environment_value_of_the_wrong_type_names_setting_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_AUTO_CREATE_TABLES", "maybe")
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig()
    assert_typed_message(info.value, "`auto_create_tables` = 'maybe'", "METAXY_AUTO_CREATE_TABLES")


def test_undecodable_environment_table_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORES", "{not json")
    with pytest.raises(InvalidConfigError) as info:
        MetaxyConfig()
    assert_typed_message(info.value, "stores", "JSON")


# --- store names and fallback cycles -------------------------------------------------------


@pytest.mark.parametrize(
    ("fallbacks", "cycle"),
    [
        ({"dev": ["dev"]}, "dev -> dev"),
        ({"dev": ["staging"], "staging": ["dev"]}, "dev -> staging -> dev"),
        ({"dev": ["a"], "a": ["b"], "b": ["a"]}, "a -> b -> a"),
    ],
)
def test_fallback_cycle_is_refused_at_config_time_naming_the_cycle(
    tmp_path: Path, fallbacks: dict[str, list[str]], cycle: str
) -> None:
    stores = {name: duckdb_store(tmp_path, name) for name in ("dev", "staging", "a", "b")}
    for name, names in fallbacks.items():
        stores[name]["config"]["fallback_stores"] = names
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(stores=stores)
    assert_typed_message(info.value, f"fallback stores form a cycle: {cycle}")


def test_fallback_cycle_made_after_validation_is_refused_by_get_store(tmp_path: Path) -> None:
    config = MetaxyConfig(
        stores={"dev": duckdb_store(tmp_path, "dev", fallback_stores=["prod"]), "prod": duckdb_store(tmp_path, "prod")}
    )
    config.stores["prod"].config["fallback_stores"] = ["dev"]  # mutated after validation
    with pytest.raises(InvalidConfigError) as info:
        config.get_store("dev")
    assert_typed_message(info.value, "Fallback stores form a cycle: dev -> prod -> dev")


def test_fallback_cycle_no_longer_recurses_at_read_time(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    """The old failure: a cycle reached a ``RecursionError`` when a feature was looked up."""
    del graph

    class Missing(mx.BaseFeature, spec=mx.FeatureSpec(key="cfg/missing", id_columns=["id"], fields=["f"])):
        id: str

    config = MetaxyConfig(
        stores={"dev": duckdb_store(tmp_path, "dev", fallback_stores=["prod"]), "prod": duckdb_store(tmp_path, "prod")}
    )
    config.stores["prod"].config["fallback_stores"] = ["dev"]
    store = DuckDBMetadataStore(tmp_path / "x.duckdb", fallback_stores=["prod"])
    with config.use(), pytest.raises(InvalidConfigError, match="prod -> dev -> prod"), store:
        store.read(Missing)


def test_unknown_fallback_store_is_refused_at_config_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(stores={"dev": duckdb_store(tmp_path, fallback_stores=["prdo"])})
    assert_typed_message(info.value, "`stores.dev.config.fallback_stores`", "'prdo'", "configured stores: dev")


def test_fallback_stores_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(stores={"dev": duckdb_store(tmp_path, fallback_stores="prod")})
    assert_typed_message(info.value, "`stores.dev.config.fallback_stores` = 'prod'", "not a list")


def test_default_store_set_to_an_unknown_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORE", "prdo")
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(stores={"dev": duckdb_store(tmp_path), "prod": duckdb_store(tmp_path, "prod")})
    assert_typed_message(info.value, "`store` = 'prdo' (from environment variable METAXY_STORE)", "dev, prod")


def test_default_store_name_left_at_its_default_is_not_checked(tmp_path: Path) -> None:
    config = MetaxyConfig(stores={"prod": duckdb_store(tmp_path, "prod")})
    assert config.store == "dev"
    with pytest.raises(InvalidConfigError, match="Available stores: prod"):
        config.get_store()


# --- read-only stores ----------------------------------------------------------------------


def _rows(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"id": ids, "metaxy_provenance_by_field": [{"f": f"h{i}"} for i in ids]})


def test_writes_to_a_read_only_duckdb_store_raise_a_typed_error_and_change_nothing(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    del graph

    class Thing(mx.BaseFeature, spec=mx.FeatureSpec(key="cfg/thing", id_columns=["id"], fields=["f"])):
        id: str

    path = tmp_path / "m.duckdb"
    writer = DuckDBMetadataStore(path, auto_create_tables=True)
    with writer.open("w"):
        writer.write(Thing, _rows(["a"]))
    config = MetaxyConfig(
        stores={"ro": {"type": DUCKDB, "config": {"database": str(path), "config": {"access_mode": "READ_ONLY"}}}}
    )
    reader = config.get_store("ro")
    assert reader.read_only
    with reader.open("w"):
        with pytest.raises(ReadOnlyStoreError, match=r"read-only; nothing was written\. Hint:"):
            reader.write(Thing, _rows(["b"]))
        with pytest.raises(ReadOnlyStoreError):
            reader.delete(Thing, filters=None, soft=False)
        assert sorted(reader.read(Thing).collect().to_polars()["id"].to_list()) == ["a"]
    with writer:
        assert sorted(writer.read(Thing).collect().to_polars()["id"].to_list()) == ["a"]


def test_config_validation_error_survives_pickling() -> None:
    """Errors cross process boundaries (Dagster's multiprocess executor, Ray) by pickle."""
    import pickle

    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(hash_truncation_length=3)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ConfigValidationError
    assert str(copy) == str(info.value)
    assert copy.errors()[0]["loc"] == ("hash_truncation_length",)
