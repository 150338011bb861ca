"""``MetaxyConfig.get_store``: building stores from config, and every way it can fail.

The store classes below follow the store-class contract (``config_model()`` and
``from_config(config_obj, **kwargs)``) without depending on ``metaxy.metadata_store``.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from metaxy.config import MetaxyConfig, StoreConfig
from metaxy.errors import InvalidConfigError


class Algo(enum.Enum):
    MD5 = "md5"
    XXHASH64 = "xxhash64"


class RecordingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    root_path: str | None = None
    fallback_stores: list[str] = []
    hash_algorithm: Algo | None = None
    auto_create_tables: bool | None = None
    read_only: bool = False


class RecordingStore:
    """Keeps what it was built with so tests can look."""

    def __init__(self, config: RecordingConfig, **kwargs: Any) -> None:
        self.config = config
        self.kwargs = kwargs
        self.name = config.name
        self.hash_algorithm = config.hash_algorithm or Algo.MD5

    @classmethod
    def config_model(cls) -> type[BaseModel]:
        return RecordingConfig

    @classmethod
    def from_config(cls, config: BaseModel, **kwargs: Any) -> RecordingStore:
        assert isinstance(config, RecordingConfig)
        return cls(config, **kwargs)


class SubRecordingStore(RecordingStore):
    pass


class PlainConfig(BaseModel):
    path: str = "x"


class NoNameStore:
    def __init__(self, config: PlainConfig) -> None:
        self.config = config

    @classmethod
    def config_model(cls) -> type[BaseModel]:
        return PlainConfig

    @classmethod
    def from_config(cls, config: BaseModel, **kwargs: Any) -> NoNameStore:
        assert isinstance(config, PlainConfig)
        return cls(config)


class ExplodingStore(RecordingStore):
    @classmethod
    def from_config(cls, config: BaseModel, **kwargs: Any) -> RecordingStore:
        raise ConnectionError("database at /nowhere is unreachable")


class HashIgnoringStore(RecordingStore):
    def __init__(self, config: RecordingConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.hash_algorithm = Algo.MD5


class NotAStore:
    pass


NOT_A_CLASS = 42


def path_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def config_with(**stores: dict[str, Any]) -> MetaxyConfig:
    return MetaxyConfig(stores={name: StoreConfig(**entry) for name, entry in stores.items()})


# --- success paths ---------------------------------------------------------------------------


def test_default_store_built_from_import_path() -> None:
    config = config_with(dev={"type": path_of(RecordingStore), "config": {"root_path": "/data"}})
    store = config.get_store()
    assert isinstance(store, RecordingStore)
    assert store.config.root_path == "/data"


def test_named_store_and_class_object_type() -> None:
    config = config_with(
        dev={"type": path_of(RecordingStore)}, prod={"type": SubRecordingStore, "config": {"read_only": True}}
    )
    store = config.get_store("prod")
    assert type(store) is SubRecordingStore
    assert store.config.read_only is True


def test_default_store_follows_store_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORE", "prod")
    config = MetaxyConfig(stores={"dev": StoreConfig(type=RecordingStore), "prod": StoreConfig(type=SubRecordingStore)})
    assert type(config.get_store()) is SubRecordingStore


def test_store_name_is_passed_when_config_model_has_name() -> None:
    config = config_with(local={"type": RecordingStore})
    assert config.get_store("local").name == "local"


def test_explicit_name_in_config_is_kept() -> None:
    config = config_with(local={"type": RecordingStore, "config": {"name": "custom"}})
    assert config.get_store("local").name == "custom"


def test_store_without_name_or_auto_create_fields_gets_neither() -> None:
    config = MetaxyConfig(auto_create_tables=True, stores={"dev": StoreConfig(type=NoNameStore)})
    assert config.get_store().config == PlainConfig()


@pytest.mark.parametrize(("global_value", "store_value", "expected"), [(True, None, True), (True, False, False)])
def test_global_auto_create_tables_injected_unless_store_sets_it(
    global_value: bool, store_value: bool | None, expected: bool
) -> None:
    options = {} if store_value is None else {"auto_create_tables": store_value}
    config = MetaxyConfig(
        auto_create_tables=global_value, stores={"dev": StoreConfig(type=RecordingStore, config=options)}
    )
    assert config.get_store().config.auto_create_tables is expected


def test_fallback_stores_stay_names() -> None:
    config = config_with(
        dev={"type": RecordingStore, "config": {"fallback_stores": ["prod"]}},
        prod={"type": ExplodingStore},
    )
    # Building "dev" must not build "prod" (which would fail).
    assert config.get_store("dev").config.fallback_stores == ["prod"]


def test_kwargs_reach_from_config() -> None:
    config = config_with(dev={"type": RecordingStore})
    assert config.get_store(materialization_id="run-1").kwargs == {"materialization_id": "run-1"}


def test_expected_type_accepts_subclass() -> None:
    config = config_with(dev={"type": SubRecordingStore})
    assert isinstance(config.get_store(expected_type=RecordingStore), SubRecordingStore)


def test_configured_hash_algorithm_is_honoured() -> None:
    config = config_with(dev={"type": RecordingStore, "config": {"hash_algorithm": "xxhash64"}})
    assert config.get_store().hash_algorithm is Algo.XXHASH64


def test_env_defined_store_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORES__PROD__TYPE", path_of(RecordingStore))
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__ROOT_PATH", "/env/prod")
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__READ_ONLY", "true")
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__FALLBACK_STORES", '["dev", "archive"]')
    monkeypatch.setenv("METAXY_STORES__DEV__TYPE", path_of(RecordingStore))
    monkeypatch.setenv("METAXY_STORES__ARCHIVE__TYPE", path_of(RecordingStore))
    store = MetaxyConfig().get_store("prod")
    assert store.config.root_path == "/env/prod"
    assert store.config.read_only is True
    assert store.config.fallback_stores == ["dev", "archive"]


def test_store_from_loaded_file(tmp_path: Path) -> None:
    (tmp_path / "metaxy.toml").write_text(
        f'[stores.dev]\ntype = "{path_of(RecordingStore)}"\n[stores.dev.config]\nroot_path = "/f"\n'
    )
    store = MetaxyConfig.load(tmp_path / "metaxy.toml").get_store()
    assert store.config.root_path == "/f"


# --- errors ----------------------------------------------------------------------------------


def _assert_store_error(info: pytest.ExceptionInfo[InvalidConfigError], *fragments: str) -> None:
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "METAXY_" in message  # the note about environment overrides
    assert "Hint:" in message
    assert message.index("Hint:") > message.index("METAXY_")  # the hint comes last


def test_no_stores_configured() -> None:
    with pytest.raises(InvalidConfigError) as info:
        MetaxyConfig().get_store()
    _assert_store_error(info, "No metadata stores are configured", "'dev'", "no config file")


def test_unknown_store_lists_available_and_names_the_file(tmp_path: Path) -> None:
    store_type = path_of(RecordingStore)
    (tmp_path / "metaxy.toml").write_text(
        f'[stores.dev]\ntype = "{store_type}"\n[stores.prod]\ntype = "{store_type}"\n'
    )
    config = MetaxyConfig.load(tmp_path / "metaxy.toml")
    with pytest.raises(InvalidConfigError) as info:
        config.get_store("staging")
    _assert_store_error(info, "'staging'", "Available stores: dev, prod", str(tmp_path.resolve() / "metaxy.toml"))


def test_unknown_store_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="not configured"):
        config_with(dev={"type": RecordingStore}).get_store("nope")


@pytest.mark.parametrize(
    ("type_path", "fragment"),
    [
        ("no_such_module_mx.Store", "could not import module 'no_such_module_mx'"),
        (f"{RecordingStore.__module__}.Missing", "has no attribute 'Missing'"),
        (f"{RecordingStore.__module__}.NOT_A_CLASS", "is a int, not a class"),
        ("JustAName", "not a module path"),
    ],
)
def test_import_failures(type_path: str, fragment: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        config_with(dev={"type": type_path}).get_store()
    _assert_store_error(info, "Store 'dev'", fragment)


def test_import_failure_is_chained() -> None:
    with pytest.raises(InvalidConfigError) as info:
        config_with(dev={"type": "no_such_module_mx.Store"}).get_store()
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_class_without_store_contract() -> None:
    with pytest.raises(InvalidConfigError) as info:
        config_with(dev={"type": NotAStore}).get_store()
    _assert_store_error(info, "is not a metadata store class")


def test_type_mismatch_with_expected_type() -> None:
    with pytest.raises(InvalidConfigError) as info:
        config_with(dev={"type": RecordingStore}).get_store(expected_type=SubRecordingStore)
    _assert_store_error(info, "is a RecordingStore", "SubRecordingStore was expected")


def test_config_validation_failure_names_fields() -> None:
    config = config_with(dev={"type": RecordingStore, "config": {"root_pth": "/typo", "read_only": "maybe"}})
    with pytest.raises(InvalidConfigError) as info:
        config.get_store()
    _assert_store_error(info, "invalid config", "root_pth", "read_only", "valid options are:")


def test_unknown_hash_algorithm_is_a_validation_failure() -> None:
    config = config_with(dev={"type": RecordingStore, "config": {"hash_algorithm": "crc32"}})
    with pytest.raises(InvalidConfigError, match="hash_algorithm"):
        config.get_store()


def test_instantiation_failure_is_wrapped_and_chained() -> None:
    with pytest.raises(InvalidConfigError) as info:
        config_with(dev={"type": ExplodingStore}).get_store()
    _assert_store_error(info, "could not be created", "ConnectionError", "/nowhere is unreachable")
    assert isinstance(info.value.__cause__, ConnectionError)


def test_store_ignoring_configured_hash_algorithm() -> None:
    config = config_with(dev={"type": HashIgnoringStore, "config": {"hash_algorithm": "xxhash64"}})
    with pytest.raises(InvalidConfigError) as info:
        config.get_store()
    _assert_store_error(info, "configured with hash_algorithm 'xxhash64' but uses 'md5'")
