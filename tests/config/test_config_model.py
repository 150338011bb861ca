"""MetaxyConfig fields, validation, environment overrides, activation and output."""

from __future__ import annotations

import contextvars
import math
import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from metaxy.config import MetaxyConfig, StoreConfig, dumps_toml
from metaxy.errors import InvalidConfigError, MetaxyWarning

# --- defaults and validation -----------------------------------------------------------------


def test_defaults() -> None:
    config = MetaxyConfig()
    assert config.project is None
    assert config.store == "dev"
    assert config.stores == {}
    assert config.entrypoints == []
    assert config.hash_truncation_length == 8
    assert config.auto_create_tables is False
    assert config.enable_map_datatype is False
    assert config.sync is True
    assert config.locked is None
    assert config.extra_features == []
    assert config.metaxy_lock_path is None
    assert config.extend is None
    assert config.ext == {}
    assert config.theme == "default"
    assert config.config_file is None


@pytest.mark.parametrize("name", ["demo", "my_project", "my-project", "P2"])
def test_valid_project_names(name: str) -> None:
    assert MetaxyConfig(project=name).project == name


@pytest.mark.parametrize("name", ["a/b", "a__b", "", "has space", "dot.ted"])
def test_invalid_project_names_name_the_value(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        MetaxyConfig(project=name)
    assert repr(name) in str(info.value)
    assert "Hint:" in str(info.value)


@pytest.mark.parametrize("length", [0, 7])
def test_hash_truncation_length_below_8_is_rejected(length: int) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 8"):
        MetaxyConfig(hash_truncation_length=length)


def test_hash_truncation_length_of_8_or_more_is_accepted() -> None:
    assert MetaxyConfig(hash_truncation_length=12).hash_truncation_length == 12


def test_unknown_constructor_argument_is_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MetaxyConfig(stor="prod")


def test_store_config_accepts_class_or_import_path() -> None:
    assert StoreConfig(type="pkg.mod.Store").type_path == "pkg.mod.Store"
    assert StoreConfig(type=Path).type_path == "pathlib.Path"
    assert StoreConfig(type="pkg.mod.Store").config == {}


def test_store_options_outside_config_table_get_a_hint() -> None:
    with pytest.raises(ValidationError) as info:
        MetaxyConfig(stores={"local": {"type": "pkg.Store", "root_path": "/data"}})
    message = str(info.value)
    assert "Store 'local' has unknown key(s): root_path" in message
    assert "[stores.local.config]" in message


def test_store_config_alone_rejects_extra_keys() -> None:
    with pytest.raises(ValidationError, match=r"\[stores.<name>.config\]"):
        StoreConfig(type="pkg.Store", root_path="/x")  # type: ignore[call-arg]


def test_store_without_type_from_code_is_an_error() -> None:
    with pytest.raises(ValidationError, match="type"):
        MetaxyConfig(stores={"dev": {"config": {}}})


# --- environment -----------------------------------------------------------------------------


def test_env_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORE", "prod")
    monkeypatch.setenv("METAXY_PROJECT", "envproj")
    monkeypatch.setenv("METAXY_LOCKED", "1")
    monkeypatch.setenv("METAXY_AUTO_CREATE_TABLES", "1")
    monkeypatch.setenv("METAXY_HASH_TRUNCATION_LENGTH", "16")
    config = MetaxyConfig()
    assert (config.store, config.project, config.locked) == ("prod", "envproj", True)
    assert config.auto_create_tables is True
    assert config.hash_truncation_length == 16


def test_constructor_arguments_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORE", "prod")
    assert MetaxyConfig(store="staging").store == "staging"


def test_env_defines_a_store_with_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORES__PROD__TYPE", "pkg.mod.Store")
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__ROOT_PATH", "/data/prod")
    config = MetaxyConfig()
    assert config.stores == {"prod": StoreConfig(type="pkg.mod.Store", config={"root_path": "/data/prod"})}


def test_env_store_without_type_is_dropped_with_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__ROOT_PATH", "/data/prod")
    with pytest.warns(MetaxyWarning, match=r"'prod'.*stores\.prod\.config\.root_path"):
        config = MetaxyConfig()
    assert config.stores == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a.features, b.features", ["a.features", "b.features"]), ('["x.y", "z"]', ["x.y", "z"])],
)
def test_env_entrypoints_comma_separated_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("METAXY_ENTRYPOINTS", value)
    assert MetaxyConfig().entrypoints == expected


def test_unrelated_metaxy_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_CONFIG", "/nonexistent/metaxy.toml")
    monkeypatch.setenv("METAXY_ENTRYPOINT_1", "some.module")
    monkeypatch.setenv("METAXY_LOG_LEVEL", "DEBUG")
    assert MetaxyConfig().entrypoints == []


# --- activation ------------------------------------------------------------------------------


def test_get_without_any_config_warns_and_returns_defaults() -> None:
    assert not MetaxyConfig.is_set()
    with pytest.warns(MetaxyWarning, match="No Metaxy configuration is set"):
        config = MetaxyConfig.get()
    assert config.store == "dev"
    assert not MetaxyConfig.is_set()


def test_set_get_reset() -> None:
    config = MetaxyConfig(project="p1")
    MetaxyConfig.set(config)
    assert MetaxyConfig.is_set()
    assert MetaxyConfig.get() is config
    MetaxyConfig.reset()
    assert not MetaxyConfig.is_set()


def test_use_overrides_global_and_restores_on_exit() -> None:
    outer, inner = MetaxyConfig(project="outer"), MetaxyConfig(project="inner")
    MetaxyConfig.set(outer)
    with inner.use() as active:
        assert active is inner
        assert MetaxyConfig.get() is inner
        with outer.use():
            assert MetaxyConfig.get() is outer
        assert MetaxyConfig.get() is inner
    assert MetaxyConfig.get() is outer


def test_use_restores_even_on_error() -> None:
    config = MetaxyConfig(project="p")
    with pytest.raises(RuntimeError), config.use():
        raise RuntimeError("boom")
    assert not MetaxyConfig.is_set()


def test_use_is_local_to_its_thread() -> None:
    seen: list[bool] = []
    with MetaxyConfig(project="p").use():
        thread = threading.Thread(target=lambda: seen.append(MetaxyConfig.is_set()))
        thread.start()
        thread.join()
    assert seen == [False]


def test_global_config_is_visible_in_fresh_contexts() -> None:
    config = MetaxyConfig(project="glob")
    MetaxyConfig.set(config)
    assert contextvars.Context().run(MetaxyConfig.get) is config


# --- paths and plugins -----------------------------------------------------------------------


def test_lock_file_defaults_beside_config_file(tmp_path: Path) -> None:
    (tmp_path / "metaxy.toml").write_text('project = "p"\n')
    config = MetaxyConfig.load(tmp_path / "metaxy.toml")
    assert config.lock_file == tmp_path.resolve() / "metaxy.lock"


def test_lock_file_is_relative_to_config_file_not_cwd(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "metaxy.toml").write_text('metaxy_lock_path = "locks/my.lock"\n')
    config = MetaxyConfig.load(tmp_path / "conf" / "metaxy.toml")
    assert config.lock_file == tmp_path.resolve() / "conf" / "locks" / "my.lock"


def test_lock_file_without_config_file_is_in_cwd() -> None:
    assert MetaxyConfig().lock_file == Path.cwd() / "metaxy.lock"


class SqlModelPlugin(BaseModel):
    enable: bool = False
    infer_db_table_names: bool = True


def test_plugins_lists_enabled_ext_entries() -> None:
    config = MetaxyConfig(
        ext={"sqlmodel": {"enable": True}, "off": {"enable": False}, "bare": {}, "env": {"enable": "true"}}
    )
    assert config.plugins == ["env", "sqlmodel"]


def test_get_plugin_validates_ext_table() -> None:
    config = MetaxyConfig(ext={"sqlmodel": {"enable": True, "infer_db_table_names": False}})
    plugin = config.get_plugin("sqlmodel", SqlModelPlugin)
    assert plugin == SqlModelPlugin(enable=True, infer_db_table_names=False)
    assert config.get_plugin("absent", SqlModelPlugin) == SqlModelPlugin()


def test_get_plugin_invalid_table_raises() -> None:
    config = MetaxyConfig(ext={"sqlmodel": {"enable": "not-a-bool"}})
    with pytest.raises(InvalidConfigError, match=r"\[ext.sqlmodel\].*Hint:"):
        config.get_plugin("sqlmodel", SqlModelPlugin)


# --- TOML output -----------------------------------------------------------------------------


def test_to_toml_round_trips_through_load(tmp_path: Path) -> None:
    class Backend:
        pass

    config = MetaxyConfig(
        project="demo",
        store="prod",
        stores={
            "prod": StoreConfig(type="pkg.mod.Store", config={"root_path": "/d", "fallback_stores": ["dev"]}),
            "dev": StoreConfig(type=Backend, config={"database": None}),
        },
        entrypoints=["a.b"],
        hash_truncation_length=10,
        extra_features=[{"projects": ["other"]}, {"keys": ["a/b"]}],
        ext={"sqlmodel": {"enable": True}},
    )
    text = config.to_toml()
    assert "database" not in text  # None values are dropped
    assert "locked" not in text
    (tmp_path / "metaxy.toml").write_text(text)
    reloaded = MetaxyConfig.load(tmp_path / "metaxy.toml")
    expected = _drop_none(config.model_dump(mode="json", exclude={"extend"}))
    assert reloaded.model_dump(mode="json", exclude_none=True) == expected
    assert reloaded.stores["dev"].type == f"{Backend.__module__}.{Backend.__qualname__}"


def test_store_config_to_toml() -> None:
    text = StoreConfig(type="pkg.Store", config={"root_path": "/x", "skip": None}).to_toml()
    assert tomllib.loads(text) == {"type": "pkg.Store", "config": {"root_path": "/x"}}


def test_to_toml_leaves_out_extend(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('entrypoints = ["base"]\n')
    (tmp_path / "metaxy.toml").write_text('extend = "base.toml"\nentrypoints = ["child"]\n')
    config = MetaxyConfig.load(tmp_path / "metaxy.toml")
    assert config.extend == "base.toml"
    assert tomllib.loads(config.to_toml())["entrypoints"] == ["base", "child"]
    assert "extend" not in tomllib.loads(config.to_toml())


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


_keys = st.text(min_size=1, max_size=8)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(_keys, _values, max_size=5))
@example(data={"0\n": []})  # a bare-key regex with `$` took the trailing newline as bare
@example(data={"a": [{"x": None, "y": 1}, None, {}], "b": {"c": {}}})  # tables in arrays, None inside
@example(data={'k"\\\x7f': '\b\t\n\f\r\x00\x1f\x7f"\\', "\u00e9": ["\U0001f600"]})  # escapes
@example(data={"f": [float("inf"), float("-inf"), -0.0, 1e300, 5e-324], "i": [-(2**63), 2**63 - 1]})
@example(data={"stores": {"dev": {"type": "x.Y", "config": {"root_path": "/p", "skip": None}}}})
def test_dumps_toml_round_trips_through_tomllib(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps_toml(data)) == _drop_none(data)


def test_dumps_toml_writes_nan_and_refuses_objects() -> None:
    assert math.isnan(tomllib.loads(dumps_toml({"x": float("nan")}))["x"])
    with pytest.raises(TypeError, match="object"):
        dumps_toml({"x": object()})


def test_importing_config_pulls_in_no_backend_driver() -> None:
    code = (
        "import sys, metaxy.config, metaxy.entrypoints\n"
        "heavy = ('dagster', 'duckdb', 'deltalake', 'psycopg', 'clickhouse_connect', 'ray')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]"
