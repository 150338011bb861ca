"""Every import path the published Metaxy documentation uses resolves to the equivalent object.

The list below is written out by value (it is the documented surface, not derived from
``metaxy._compat``), so a removed alias or a path pointing at the wrong object fails here.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import metaxy as mx
from metaxy import _compat, errors
from metaxy.models import constants

# documented "module:name" -> the canonical "module:name" it must be the very same object as
DOCUMENTED: dict[str, str] = {
    "metaxy.utils:collect_to_polars": "metaxy.frames:collect_to_polars",
    "metaxy.utils:collect_to_arrow": "metaxy.frames:collect_to_arrow",
    "metaxy.versioning.types:Increment": "metaxy:Increment",
    "metaxy.versioning.types:LazyIncrement": "metaxy:LazyIncrement",
    "metaxy.versioning.types:PolarsIncrement": "metaxy:PolarsIncrement",
    "metaxy.versioning.types:PolarsLazyIncrement": "metaxy:PolarsLazyIncrement",
    "metaxy.versioning.types:HashAlgorithm": "metaxy:HashAlgorithm",
    "metaxy.models.types:PushResult": "metaxy.metadata_store:PushResult",
    "metaxy.models.types:FeatureKey": "metaxy:FeatureKey",
    "metaxy.models.types:FieldKey": "metaxy:FieldKey",
    "metaxy.models.types:ValidatedFeatureKey": "metaxy:ValidatedFeatureKey",
    "metaxy.models.types:ValidatedFeatureKeyAdapter": "metaxy:ValidatedFeatureKeyAdapter",
    "metaxy.metadata_store.exceptions:MetadataStoreError": "metaxy.errors:MetadataStoreError",
    "metaxy.metadata_store.exceptions:FeatureNotFoundError": "metaxy.errors:FeatureNotFoundError",
    "metaxy.metadata_store.exceptions:SystemDataNotFoundError": "metaxy.errors:SystemDataNotFoundError",
    "metaxy.metadata_store.exceptions:FieldNotFoundError": "metaxy.errors:FieldNotFoundError",
    "metaxy.metadata_store.exceptions:MetadataSchemaError": "metaxy.errors:MetadataSchemaError",
    "metaxy.metadata_store.exceptions:DependencyError": "metaxy.errors:DependencyError",
    "metaxy.metadata_store.exceptions:StoreNotOpenError": "metaxy.errors:StoreNotOpenError",
    "metaxy.metadata_store.exceptions:HashAlgorithmNotSupportedError": "metaxy.errors:HashAlgorithmNotSupportedError",
    "metaxy.metadata_store.exceptions:TableNotFoundError": "metaxy.errors:TableNotFoundError",
    "metaxy.metadata_store.exceptions:VersioningEngineMismatchError": "metaxy.errors:VersioningEngineMismatchError",
    "metaxy.metadata_store.base:VersioningEngineOptions": "metaxy.metadata_store.base:VersioningEngine",
    "metaxy.metadata_store.base:MetadataStore": "metaxy:MetadataStore",
    "metaxy.config:InvalidConfigError": "metaxy.errors:InvalidConfigError",
    "metaxy.config:MetaxyConfig": "metaxy:MetaxyConfig",
    "metaxy.models.feature:FeatureGraph": "metaxy:FeatureGraph",
    "metaxy.models.feature:BaseFeature": "metaxy:BaseFeature",
    "metaxy.models.feature_selection:FeatureSelection": "metaxy:FeatureSelection",
    "metaxy.models.lineage:LineageRelationship": "metaxy:LineageRelationship",
    "metaxy.models.filter_expression:parse_filter_string": "metaxy.models.filter_expression:parse_filter_string",
    "metaxy.ext.dagster.observable:observable_metaxy_asset": "metaxy.ext.dagster:observable_metaxy_asset",
    "metaxy.ext.dagster.observation_job:build_metaxy_observation_job": (
        "metaxy.ext.dagster:build_metaxy_observation_job"
    ),
    "metaxy.ext.dagster.observation_job:build_metaxy_multi_observation_job": (
        "metaxy.ext.dagster:build_metaxy_multi_observation_job"
    ),
    "metaxy.ext.dagster.utils:generate_materialize_results": "metaxy.ext.dagster:generate_materialize_results",
    "metaxy.ext.dagster.io_manager:MetaxyIOManager": "metaxy.ext.dagster:MetaxyIOManager",
    "metaxy.ext.dagster.metaxify:metaxify": "metaxy.ext.dagster:metaxify",
    "metaxy.ext.duckdb:DuckDBMetadataStore": "metaxy.metadata_store.duckdb:DuckDBMetadataStore",
    "metaxy.ext.duckdb:ExtensionSpec": "metaxy.metadata_store.duckdb:ExtensionSpec",
    "metaxy.ext.polars:DeltaMetadataStore": "metaxy.metadata_store.delta:DeltaMetadataStore",
    "metaxy.ext.polars.handlers.delta:DeltaMetadataStore": "metaxy.metadata_store.delta:DeltaMetadataStore",
}

# the published names of the system-column constants, beside ours
PUBLISHED_CONSTANTS: dict[str, str] = {
    "METAXY_PROVENANCE_BY_FIELD": "metaxy_provenance_by_field",
    "METAXY_PROVENANCE": "metaxy_provenance",
    "METAXY_DATA_VERSION_BY_FIELD": "metaxy_data_version_by_field",
    "METAXY_DATA_VERSION": "metaxy_data_version",
    "METAXY_FEATURE_VERSION": "metaxy_feature_version",
    "METAXY_PROJECT_VERSION": "metaxy_project_version",
    "METAXY_CREATED_AT": "metaxy_created_at",
    "METAXY_UPDATED_AT": "metaxy_updated_at",
    "METAXY_DELETED_AT": "metaxy_deleted_at",
    "METAXY_MATERIALIZATION_ID": "metaxy_materialization_id",
    "METAXY_DEFINITION_VERSION": "metaxy_definition_version",
    "METAXY_SYSTEM_COLUMN_PREFIX": "metaxy_",
    "DEFAULT_CODE_VERSION": "__metaxy_initial__",
}

DEPRECATED: dict[str, str] = {
    "metaxy.ext.metadata_stores.duckdb:DuckDBMetadataStore": "metaxy.ext.duckdb:DuckDBMetadataStore",
    "metaxy.ext.metadata_stores.duckdb:ExtensionSpec": "metaxy.ext.duckdb:ExtensionSpec",
    "metaxy.ext.metadata_stores.delta:DeltaMetadataStore": "metaxy.ext.polars.handlers.delta:DeltaMetadataStore",
    "metaxy.ext.metadata_stores:DuckDBMetadataStore": "metaxy.ext.duckdb:DuckDBMetadataStore",
}


def _load(path: str) -> object:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def test_every_documented_path_is_the_canonical_object() -> None:
    wrong = {path: canonical for path, canonical in DOCUMENTED.items() if _load(path) is not _load(canonical)}
    assert wrong == {}


def test_from_import_and_star_import_work() -> None:
    from metaxy.metadata_store.exceptions import FeatureNotFoundError
    from metaxy.utils import collect_to_polars
    from metaxy.versioning.types import Increment

    assert FeatureNotFoundError is errors.FeatureNotFoundError
    assert collect_to_polars.__name__ == "collect_to_polars" and Increment.__name__ == "Increment"
    namespace: dict[str, object] = {}
    exec("from metaxy.metadata_store.exceptions import *", namespace)
    assert namespace["StoreNotOpenError"] is errors.StoreNotOpenError
    assert "collect_to_arrow" in dir(importlib.import_module("metaxy.utils"))


def test_published_constant_names() -> None:
    assert {name: getattr(constants, name) for name in PUBLISHED_CONSTANTS} == PUBLISHED_CONSTANTS
    assert constants.ALL_SYSTEM_COLUMNS == constants.SYSTEM_COLUMNS
    assert set(PUBLISHED_CONSTANTS) <= set(constants.__all__)


def test_lineage_names() -> None:
    from metaxy.models.lineage import (
        AggregationRelationship,
        ExpansionRelationship,
        IdentityRelationship,
        LineageRelationshipType,
    )

    agg = mx.LineageRelationship.aggregation(on=["group"])
    assert isinstance(agg.relationship, AggregationRelationship) and agg.type is LineageRelationshipType.AGGREGATION
    assert isinstance(mx.LineageRelationship.identity().relationship, IdentityRelationship)
    exp = mx.LineageRelationship.expansion(on="video_id")
    assert isinstance(exp.relationship, ExpansionRelationship) and exp.type == "1:N"
    assert mx.LineageRelationship.identity().get_aggregation_columns(["id"]) is None
    assert agg.get_aggregation_columns(["id"]) == ("group",)
    assert mx.LineageRelationship.aggregation().get_aggregation_columns(["id"]) == ("id",)
    assert exp.get_aggregation_columns(["clip_id"]) == ("video_id",)
    assert mx.LineageRelationship(relationship=AggregationRelationship(on="g")) == mx.LineageRelationship.aggregation(
        on=["g"]
    )


@pytest.mark.parametrize("path", sorted(DEPRECATED))
def test_deprecated_paths_warn_and_resolve(path: str) -> None:
    with pytest.warns(DeprecationWarning, match=r"metaxy\.ext\.metadata_stores.* is deprecated: import .* from"):
        value = _load(path)
    assert value is _load(DEPRECATED[path])


def test_deprecated_path_warns_on_every_use() -> None:
    for _ in range(2):
        with pytest.warns(DeprecationWarning, match="metaxy.ext.duckdb"):
            from metaxy.ext.metadata_stores.duckdb import DuckDBMetadataStore
    assert DuckDBMetadataStore is _load("metaxy.ext.duckdb:DuckDBMetadataStore")


def test_a_deprecated_path_in_metaxy_toml_warns_and_works(tmp_path: object) -> None:
    from pathlib import Path

    from metaxy.config import MetaxyConfig, StoreConfig

    database = Path(str(tmp_path)) / "old.duckdb"
    old_path = "metaxy.ext.metadata_stores.duckdb.DuckDBMetadataStore"
    config = MetaxyConfig(stores={"dev": StoreConfig(type=old_path, config={"database": database})})
    with pytest.warns(DeprecationWarning, match="metaxy.ext.metadata_stores.duckdb is deprecated"):
        store = config.get_store("dev")
    with store.open("w"):
        assert store.list_features() == []
    assert database.exists()


def test_unknown_alias_is_an_attribute_error() -> None:
    utils = importlib.import_module("metaxy.utils")
    with pytest.raises(AttributeError, match="has no attribute 'collect_to_pandas'"):
        utils.collect_to_pandas  # noqa: B018


def test_every_registry_row_resolves() -> None:
    failures: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for module, names in _compat.ALIASES.items():
            for name in names:
                try:
                    _load(f"{module}:{name}")
                except (ImportError, AttributeError) as exc:
                    failures[f"{module}:{name}"] = repr(exc)
    assert failures == {}


def test_alias_modules_keep_import_metaxy_light() -> None:
    code = (
        "import sys, json, metaxy, metaxy.utils, metaxy.versioning.types, metaxy.models.types, "
        "metaxy.metadata_store.exceptions, metaxy.models.feature_selection, metaxy.ext.polars, metaxy.config; "
        "metaxy.utils.collect_to_polars; "
        "print(json.dumps([m for m in ('dagster', 'duckdb', 'deltalake') if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_delta_store_has_only_its_documented_import_paths() -> None:
    """``metaxy.ext.polars.handlers.delta`` is the Delta store's home; the other names are the
    published aliases (``metaxy.ext.polars``, the deprecated ``metaxy.ext.metadata_stores.delta``)."""
    import metaxy.ext

    homes = {
        "metaxy.ext.polars.handlers.delta",
        "metaxy.ext.polars",
        "metaxy.ext.metadata_stores",
        "metaxy.ext.metadata_stores.delta",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for home in homes:
            assert _load(f"{home}:DeltaMetadataStore") is _load("metaxy.metadata_store.delta:DeltaMetadataStore")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("metaxy.ext.delta")
    assert not hasattr(metaxy.ext, "delta")
