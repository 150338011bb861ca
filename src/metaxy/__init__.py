"""metaxy: per-sample, per-field metadata versioning for incremental data and ML pipelines.

Import as ``import metaxy as mx``. Importing metaxy is light: stores' drivers, Dagster and the
CLI load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from metaxy import _hooks
from metaxy._version import __version__
from metaxy.errors import (
    ExternalFeatureVersionMismatchError,
    ExternalFeatureVersionMismatchWarning,
    MetaxyMissingFeatureDependency,
    UnresolvedExternalFeatureWarning,
)
from metaxy.models import (
    BaseFeature,
    CoercibleToFeatureKey,
    CoercibleToFieldKey,
    FeatureConfig,
    FeatureDefinition,
    FeatureDep,
    FeatureDepMetadata,
    FeatureGraph,
    FeatureKey,
    FeatureSpec,
    FeatureSpecWithIDColumns,
    FieldDep,
    FieldKey,
    FieldsMapping,
    FieldsMappingType,
    FieldSpec,
    IDColumns,
    LineageRelationship,
    SpecialFieldDep,
    ValidatedFeatureKey,
    ValidatedFeatureKeySequence,
    ValidatedFieldKey,
    ValidatedFieldKeySequence,
    coerce_to_feature_key,
    current_graph,
    get_feature_by_key,
    graph,
)
from metaxy.models.fields_mapping import AllFieldsMapping, DefaultFieldsMapping
from metaxy.models.settings import register_settings_provider as _register_settings_provider
from metaxy.versioning.hashing import HashAlgorithm

if TYPE_CHECKING:
    from metaxy.config import MetaxyConfig, StoreConfig, init
    from metaxy.entrypoints import load_features, load_module_entrypoint, load_package_entrypoints
    from metaxy.external_features import sync_external_features
    from metaxy.metadata_store import (
        AccessMode,
        BufferedMetadataWriter,
        Increment,
        LazyIncrement,
        MetadataStore,
        PolarsIncrement,
        PolarsLazyIncrement,
        SystemTableStorage,
    )
    from metaxy.models.selection import FeatureSelection

# Names resolved on first access, so ``import metaxy`` stays light.
_LAZY: dict[str, str] = {
    "ValidatedFeatureKeyAdapter": "metaxy.models.keys",
    "ValidatedFeatureKeySequenceAdapter": "metaxy.models.keys",
    "ValidatedFieldKeyAdapter": "metaxy.models.keys",
    "ValidatedFieldKeySequenceAdapter": "metaxy.models.keys",
    "MetaxyConfig": "metaxy.config",
    "StoreConfig": "metaxy.config",
    "init": "metaxy.config",
    "load_features": "metaxy.entrypoints",
    "load_module_entrypoint": "metaxy.entrypoints",
    "load_package_entrypoints": "metaxy.entrypoints",
    "AccessMode": "metaxy.metadata_store",
    "BufferedMetadataWriter": "metaxy.metadata_store",
    "Increment": "metaxy.metadata_store",
    "LazyIncrement": "metaxy.metadata_store",
    "MetadataStore": "metaxy.metadata_store",
    "PolarsIncrement": "metaxy.metadata_store",
    "PolarsLazyIncrement": "metaxy.metadata_store",
    "SystemTableStorage": "metaxy.metadata_store",
    "InMemoryMetadataStore": "metaxy.metadata_store",
    "FeatureSelection": "metaxy.models.selection",
    "metaxify": "metaxy.ext.dagster",
    "sync_external_features": "metaxy.external_features",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metaxy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _configured_settings() -> Any:
    from metaxy.config import MetaxyConfig
    from metaxy.models.settings import AmbientSettings

    config = MetaxyConfig.current_or_default()
    return AmbientSettings(
        project=config.project,
        hash_truncation_length=config.hash_truncation_length,
        enable_map_datatype=bool(config.enable_map_datatype),
        auto_create_tables=bool(config.auto_create_tables),
    )


def _auto_sync(store: Any) -> None:
    from metaxy.external_features import auto_sync

    auto_sync(store)


# The composition root wires the layers: configuration feeds the definitions' settings, and the
# external-feature sync runs before store reads, without a lower layer importing a higher one.
_register_settings_provider(_configured_settings)
_hooks.before_store_access.append(_auto_sync)


def experimental(obj: Any) -> Any:
    """Mark an API as experimental (documentation only; returns ``obj`` unchanged)."""
    return obj


__all__ = [
    "AccessMode",
    "AllFieldsMapping",
    "BaseFeature",
    "BufferedMetadataWriter",
    "CoercibleToFeatureKey",
    "CoercibleToFieldKey",
    "DefaultFieldsMapping",
    "ExternalFeatureVersionMismatchError",
    "ExternalFeatureVersionMismatchWarning",
    "FeatureConfig",
    "FeatureDefinition",
    "FeatureDep",
    "FeatureDepMetadata",
    "FeatureGraph",
    "FeatureKey",
    "FeatureSelection",
    "FeatureSpec",
    "FeatureSpecWithIDColumns",
    "FieldDep",
    "FieldKey",
    "FieldSpec",
    "FieldsMapping",
    "FieldsMappingType",
    "HashAlgorithm",
    "IDColumns",
    "InMemoryMetadataStore",
    "Increment",
    "LazyIncrement",
    "LineageRelationship",
    "MetadataStore",
    "MetaxyConfig",
    "MetaxyMissingFeatureDependency",
    "PolarsIncrement",
    "PolarsLazyIncrement",
    "SpecialFieldDep",
    "StoreConfig",
    "SystemTableStorage",
    "UnresolvedExternalFeatureWarning",
    "ValidatedFeatureKey",
    "ValidatedFeatureKeyAdapter",
    "ValidatedFeatureKeySequence",
    "ValidatedFeatureKeySequenceAdapter",
    "ValidatedFieldKey",
    "ValidatedFieldKeyAdapter",
    "ValidatedFieldKeySequence",
    "ValidatedFieldKeySequenceAdapter",
    "__version__",
    "coerce_to_feature_key",
    "current_graph",
    "experimental",
    "get_feature_by_key",
    "graph",
    "init",
    "load_features",
    "load_module_entrypoint",
    "load_package_entrypoints",
    "sync_external_features",
]
