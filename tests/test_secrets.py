"""Secrets stay secret: a planted credential is searched for in every output metaxy produces.

Each test plants fresh secrets (so a value masked because an earlier test registered it cannot
make a later test pass) and searches ``mx config print`` (both formats), ``repr``/``str`` of
configs and stores, ``display()``, validation errors (message, ``repr``, ``errors()`` and the
whole formatted traceback with its chained causes), store exceptions and warnings.
The Dagster run's event log is searched in ``tests/ext/dagster/test_secrets_masked.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import traceback
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

import metaxy as mx
import metaxy.config._model as config_model
from metaxy._secrets import MASK, is_secret_key, mask_mapping, mask_text, register_secret
from metaxy.config import MetaxyConfig, StoreConfig
from metaxy.errors import BackendError, ConfigValidationError, InvalidConfigError, MetaxyWarning
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore, DeltaMetadataStoreConfig
from metaxy.ext.postgresql import PostgreSQLMetadataStore

MX = shutil.which("mx", path=str(Path(sys.executable).parent))


def fresh(label: str) -> str:
    """A secret never seen before in this process."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"secret {secret!r} leaked in:\n{text}"


def full_traceback(exc: BaseException) -> str:
    """What a traceback (with every chained cause and context) would print."""
    return "".join(traceback.format_exception(exc))


@pytest.fixture(autouse=True)
def _no_config_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("METAXY_"):
            monkeypatch.delenv(name)
    MetaxyConfig.reset()
    token = config_model._context_config.set(None)
    try:
        yield
    finally:
        config_model._context_config.reset(token)
        MetaxyConfig.reset()


# --- the masking rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "kept"),
    [
        ("postgresql://alice:{s}@db.example:5432/meta", "postgresql://alice:***@db.example:5432/meta"),
        ("s3://AKIAEXAMPLE:{s}/with+slash@bucket/prefix", "s3://AKIAEXAMPLE:***@bucket/prefix"),
        ("clickhouse+native://u:{s}@h:9000/db", "clickhouse+native://u:***@h:9000/db"),
        ("https://h/db?user=bob&password={s}&sslmode=require", "https://h/db?user=bob&password=***&sslmode=require"),
        ("md:prod?motherduck_token={s}", "md:prod?motherduck_token=***"),
        ("{{'AWS_SECRET_ACCESS_KEY': '{s}', 'AWS_REGION': 'eu-west-1'}}", "'AWS_REGION': 'eu-west-1'"),
        ('{{"aws_session_token": "{s}", "endpoint": "http://minio:9000"}}', '"endpoint": "http://minio:9000"'),
        ('storage_options = {{ AWS_SECRET_ACCESS_KEY = "{s}", AWS_REGION = "eu" }}', 'AWS_REGION = "eu"'),
        ("AccountName=acc;AccountKey={s};EndpointSuffix=core.windows.net", "EndpointSuffix=core.windows.net"),
        ("api_key: {s}", "api_key: ***"),
    ],
)
def test_mask_text_hides_secrets_in_every_notation(template: str, kept: str) -> None:
    secret = fresh("Sx")
    masked = mask_text(template.format(s=secret))
    assert_hidden(masked, secret)
    assert kept in masked


@pytest.mark.parametrize(
    "text",
    [
        "s3://bucket/prefix/a.delta",
        "/tmp/data/store.duckdb",
        "DeltaMetadataStore(name=dev, root_path=/data, layout=nested)",
        "AWS_REGION = 'eu-west-1', endpoint=http://localhost:9000",
        "Feature 'video/raw' has no id column 'video_id'. Hint: ...",
    ],
)
def test_mask_text_leaves_ordinary_text_alone(text: str) -> None:
    assert mask_text(text) == text


def test_credential_like_keys() -> None:
    secret_keys = ["AWS_SECRET_ACCESS_KEY", "aws_session_token", "password", "token", "sas_token", "api_key"]
    plain_keys = ["AWS_REGION", "root_path", "database", "lock_timeout", "layout", "endpoint"]
    assert all(is_secret_key(k) for k in secret_keys)
    assert not any(is_secret_key(k) for k in plain_keys)


def test_mask_mapping_masks_nested_values_and_leaves_the_input_unchanged() -> None:
    secret, password = fresh("Sm"), fresh("Pm")
    options = {
        "storage_options": {"AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "eu-west-1"},
        "dsn": f"postgresql://u:{password}@h/db",
    }
    masked = mask_mapping(options)
    assert masked == {
        "storage_options": {"AWS_SECRET_ACCESS_KEY": MASK, "AWS_REGION": "eu-west-1"},
        "dsn": "postgresql://u:***@h/db",
    }
    assert options["storage_options"]["AWS_SECRET_ACCESS_KEY"] == secret  # type: ignore[index]


def test_a_registered_secret_is_masked_wherever_it_appears() -> None:
    secret = fresh("Reg")
    assert secret in mask_text(f"driver said: bad key {secret}")
    register_secret(secret)
    assert mask_text(f"driver said: bad key {secret}") == f"driver said: bad key {MASK}"


# --- mx config print -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_mx_config_print_masks_secrets_from_file_and_environment(tmp_path: Path, fmt: str) -> None:
    file_secret, env_secret, password, token = fresh("File"), fresh("Env"), fresh("Pw"), fresh("Tok")
    (tmp_path / "metaxy.toml").write_text(
        textwrap.dedent(
            f"""
            project = "p"
            store = "lake"
            [stores.lake]
            type = "metaxy.ext.polars.handlers.delta.DeltaMetadataStore"
            [stores.lake.config]
            root_path = "s3://bucket/metaxy"
            storage_options = {{ AWS_SECRET_ACCESS_KEY = "{file_secret}", AWS_REGION = "eu-west-1" }}
            [stores.pg]
            type = "metaxy.ext.duckdb.DuckDBMetadataStore"
            [stores.pg.config]
            database = "postgresql://metaxy:{password}@db.internal:5432/meta"
            [ext.someplugin]
            enable = true
            api_token = "{token}"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAXY_")}
    env["METAXY_STORES__LAKE__CONFIG__STORAGE_OPTIONS__AWS_SESSION_TOKEN"] = env_secret
    assert MX is not None
    out = subprocess.run(
        [MX, "config", "print", "--format", fmt], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert_hidden(out.stdout + out.stderr, file_secret, env_secret, password, token)
    assert "eu-west-1" in out.stdout and "db.internal:5432" in out.stdout
    assert out.stdout.count(MASK) >= 4
    if fmt == "json":
        printed = json.loads(out.stdout)
        assert printed["stores"]["lake"]["config"]["storage_options"] == {
            "AWS_SECRET_ACCESS_KEY": MASK,
            "AWS_REGION": "eu-west-1",
            "AWS_SESSION_TOKEN": MASK,
        } or printed["stores"]["lake"]["config"]["storage_options"] == {
            "AWS_SECRET_ACCESS_KEY": MASK,
            "AWS_REGION": "eu-west-1",
            "aws_session_token": MASK,
        }


def test_mx_errors_on_a_misconfigured_store_do_not_print_the_secret(tmp_path: Path) -> None:
    secret, env_secret = fresh("CliKey"), fresh("CliEnv")
    (tmp_path / "metaxy.toml").write_text(
        textwrap.dedent(
            f"""
            [stores.dev]
            type = "metaxy.ext.polars.handlers.delta.DeltaMetadataStore"
            [stores.dev.config]
            root_path = "{tmp_path / "lake"}"
            aws_secret_access_key = "{secret}"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAXY_")}
    assert MX is not None
    out = subprocess.run(
        [MX, "metadata", "status", "--all-features"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert "aws_secret_access_key" in out.stdout + out.stderr  # the setting is named ...
    assert_hidden(out.stdout + out.stderr, secret)  # ... its value is not
    env["METAXY_STORES__DEV__CONFIG__LOCK_TIMEOUT"] = "nan"
    env["METAXY_STORES__DEV__CONFIG__PASSWORD"] = env_secret
    out = subprocess.run([MX, "list", "stores"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "METAXY_STORES__DEV__CONFIG__LOCK_TIMEOUT" in out.stdout + out.stderr
    assert_hidden(out.stdout + out.stderr, secret, env_secret)


def test_python_mode_dump_keeps_real_values_for_building_stores() -> None:
    secret = fresh("Py")
    entry = StoreConfig(
        type="metaxy.ext.polars.handlers.delta.DeltaMetadataStore", config={"storage_options": {"token": secret}}
    )
    assert entry.model_dump()["config"]["storage_options"]["token"] == secret
    assert entry.model_dump(mode="json")["config"]["storage_options"]["token"] == MASK
    revealed = entry.model_dump(mode="json", context={"metaxy_reveal_secrets": True})
    assert revealed["config"]["storage_options"]["token"] == secret


# --- repr / str / display --------------------------------------------------------------------


def test_repr_and_str_of_configs_mask_secrets(tmp_path: Path) -> None:
    secret, password = fresh("Rc"), fresh("Rp")
    options = {
        "root_path": str(tmp_path),
        "storage_options": {"AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "eu-west-1"},
    }
    config = MetaxyConfig(
        stores={
            "dev": {"type": "metaxy.ext.polars.handlers.delta.DeltaMetadataStore", "config": options},
            "pg": {"type": "x.Store", "config": {"database": f"postgresql://u:{password}@h/db"}},
        }
    )
    store_model = DeltaMetadataStoreConfig.model_validate(options)
    for obj in (config, config.stores["dev"], config.stores["pg"], store_model):
        assert_hidden(repr(obj) + str(obj), secret, password)
        assert "eu-west-1" in repr(obj) or "u:***@h/db" in repr(obj)
    assert config.stores["dev"].config["storage_options"]["AWS_SECRET_ACCESS_KEY"] == secret


def test_store_display_repr_and_info_mask_secrets(tmp_path: Path) -> None:
    secret, token, password = fresh("Ds"), fresh("Dt"), fresh("Dp")
    stores = [
        DeltaMetadataStore(f"s3://AKIAEXAMPLE:{secret}@bucket/metaxy", name="lake"),
        DeltaMetadataStore(tmp_path / "delta", storage_options={"AWS_SECRET_ACCESS_KEY": secret}),
        DuckDBMetadataStore(f"md:prod?motherduck_token={token}"),
        DuckDBMetadataStore(f"postgresql://u:{password}@h/db"),
        PostgreSQLMetadataStore(f"postgresql://u:{password}@h:5432/db", schema="m"),
        PostgreSQLMetadataStore(host="h", user="u", password=password, dbname="db", sslmode="require"),
    ]
    for store in stores:
        shown = " ".join([store.display(), repr(store), str(store), json.dumps(store.get_store_info())])
        assert_hidden(shown, secret, token, password)
        assert type(store).__name__ in shown


# --- validation errors -----------------------------------------------------------------------


def _assert_error_hides(exc: BaseException, *secrets: str) -> None:
    shown = [str(exc), repr(exc), full_traceback(exc)]
    if isinstance(exc, ValidationError):
        shown.append(repr(exc.errors()))
    for text in shown:
        assert_hidden(text, *secrets)


def test_get_store_validation_error_does_not_echo_a_misplaced_secret(tmp_path: Path) -> None:
    secret = fresh("Ve")
    # The key belongs in storage_options: pydantic's own message would be
    # "Extra inputs are not permitted [type=extra_forbidden, input_value='<the secret>', ...]".
    config = MetaxyConfig(
        stores={
            "lake": {
                "type": "metaxy.ext.polars.handlers.delta.DeltaMetadataStore",
                "config": {"root_path": str(tmp_path), "aws_secret_access_key": secret},
            }
        }
    )
    with pytest.raises(InvalidConfigError) as info:
        config.get_store("lake")
    assert isinstance(info.value, ValidationError)
    assert "`aws_secret_access_key` = '***'" in str(info.value) and "Extra inputs are not permitted" in str(info.value)
    assert str(info.value).rstrip().endswith(".") and "Hint:" in str(info.value)
    _assert_error_hides(info.value, secret)


def test_get_store_validation_error_does_not_echo_storage_options(tmp_path: Path) -> None:
    secret = fresh("Vo")
    # root_path forgotten: pydantic's own message would echo the input, storage_options included.
    options = {"storage_options": {"AWS_SECRET_ACCESS_KEY": secret}}
    config = MetaxyConfig(
        stores={"lake": {"type": "metaxy.ext.polars.handlers.delta.DeltaMetadataStore", "config": options}}
    )
    with pytest.raises(InvalidConfigError) as info:
        config.get_store("lake")
    assert "`root_path`" in str(info.value) and "Field required" in str(info.value)
    _assert_error_hides(info.value, secret)


def test_store_from_config_validation_error_does_not_echo_secrets() -> None:
    secret = fresh("Fc")
    with pytest.raises(ConfigValidationError) as info:
        DeltaMetadataStore.from_config({"storage_options": {"sas_token": secret}, "layout": "sideways"})
    assert "`layout` = 'sideways'" in str(info.value)
    _assert_error_hides(info.value, secret)


def test_metaxy_config_validation_error_does_not_echo_the_store_entry() -> None:
    password = fresh("Mc")
    with pytest.raises(ConfigValidationError) as info:
        MetaxyConfig(stores={"dev": {"type": "x.Store", "config": {"password": password}, "database": "oops"}})
    assert "database" in str(info.value)
    _assert_error_hides(info.value, password)


def test_secret_typed_wrongly_is_named_but_not_shown() -> None:
    secret = fresh("Wt")
    with pytest.raises(ConfigValidationError) as info:
        DeltaMetadataStoreConfig.model_validate({"root_path": "/x", "storage_options": {"password": [secret]}})
    assert "storage_options.password" in str(info.value)
    _assert_error_hides(info.value, secret)


def test_environment_secret_with_bad_json_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = fresh("Ej")
    monkeypatch.setenv("METAXY_STORES", f'{{"dev": {{"type": "x.Store", "config": {{"token": "{secret}"}}')
    with pytest.raises(InvalidConfigError) as info:
        MetaxyConfig()
    assert "METAXY_" in str(info.value)
    _assert_error_hides(info.value, secret)


# --- exceptions and warnings -----------------------------------------------------------------


def test_errors_and_warnings_mask_secrets_of_validated_configs(tmp_path: Path) -> None:
    secret = fresh("Ew")
    DeltaMetadataStoreConfig.model_validate({"root_path": str(tmp_path), "storage_options": {"token": secret}})
    # A driver that quotes the credential back, translated the usual way.
    error = BackendError(f"Delta said: request signed with {secret} was rejected. Hint: check credentials.")
    assert_hidden(str(error) + repr(error), secret)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(MetaxyWarning(f"retrying with {secret}"), stacklevel=1)
    assert_hidden(str(caught[0].message), secret)


def test_errors_mask_credentials_of_a_store_built_directly(tmp_path: Path) -> None:
    secret = fresh("Direct")
    store = DeltaMetadataStore(tmp_path, storage_options={"AWS_SECRET_ACCESS_KEY": secret})
    with store:
        error = BackendError(f"object store refused key {secret}. Hint: check credentials.")
    assert_hidden(str(error) + repr(error), secret)


def test_a_real_delta_store_with_credentials_reads_and_writes(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    """Masking is for display only: the store passes its real ``storage_options`` to Delta."""
    del graph
    secret = fresh("Rw")

    class Thing(mx.BaseFeature, spec=mx.FeatureSpec(key="secrets/thing", id_columns=["id"], fields=["f"])):
        id: str

    config = MetaxyConfig(
        stores={
            "lake": {
                "type": "metaxy.ext.polars.handlers.delta.DeltaMetadataStore",
                "config": {"root_path": str(tmp_path), "storage_options": {"AWS_SECRET_ACCESS_KEY": secret}},
            }
        }
    )
    store = config.get_store("lake")
    assert store.storage_options == {"AWS_SECRET_ACCESS_KEY": secret}
    with store.open("w"):
        store.write(Thing, pl.DataFrame({"id": ["a"], "metaxy_provenance_by_field": [{"f": "h"}]}))
        assert store.read(Thing).collect().to_native().height == 1
    assert_hidden(repr(store) + repr(config), secret)
