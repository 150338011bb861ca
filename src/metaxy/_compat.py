"""The compatibility surface: every documented import path whose object lives elsewhere.

The published Metaxy documentation imports some names from modules where metaxy does not keep
them (``metaxy.utils.collect_to_polars``, ``metaxy.versioning.types.Increment`` ...). Each such
*alias* is one row of :data:`ALIASES` below, and nowhere else: a module that hosts aliases only
installs the hooks of this module::

    from metaxy._compat import alias_hooks
    __getattr__, __dir__ = alias_hooks(__name__)

Aliases resolve lazily, on first access, so hosting them costs ``import metaxy`` nothing and an
alias into an optional integration (Dagster) imports it only when used. Modules listed in
:data:`DEPRECATED` emit a ``DeprecationWarning`` on every access that names the new path.
``tests/compat/test_documented_paths.py`` imports every documented path and checks that it is
the same object as its canonical one.

Documented names that are genuinely defined where the documentation puts them (the ``METAXY_*``
constants in ``metaxy.models.constants``, the relationship classes in ``metaxy.models.lineage``,
``metaxy.ext.duckdb.ExtensionSpec``) are not aliases and are not listed here.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["ALIASES", "DEPRECATED", "alias_hooks", "alias_names", "resolve_alias"]

_STORE_ERRORS = (
    "MetadataStoreError",
    "FeatureNotFoundError",
    "SystemDataNotFoundError",
    "FieldNotFoundError",
    "MetadataSchemaError",
    "DependencyError",
    "StoreNotOpenError",
    "HashAlgorithmNotSupportedError",
    "TableNotFoundError",
    "VersioningEngineMismatchError",
)

# documented module -> {documented name: "canonical.module" or "canonical.module:other_name"}
ALIASES: dict[str, dict[str, str]] = {
    "metaxy.utils": {
        "collect_to_polars": "metaxy.frames",
        "collect_to_arrow": "metaxy.frames",
    },
    "metaxy.versioning.types": {
        "Increment": "metaxy.metadata_store.types",
        "LazyIncrement": "metaxy.metadata_store.types",
        "PolarsIncrement": "metaxy.metadata_store.types",
        "PolarsLazyIncrement": "metaxy.metadata_store.types",
        "HashAlgorithm": "metaxy.versioning.hashing",
    },
    "metaxy.models.types": {
        "PushResult": "metaxy.metadata_store.system",
        "FeatureKey": "metaxy.models.keys",
        "FieldKey": "metaxy.models.keys",
        "FQFieldKey": "metaxy.models.keys",
        "CoercibleToFeatureKey": "metaxy.models.keys",
        "CoercibleToFieldKey": "metaxy.models.keys",
        "ValidatedFeatureKey": "metaxy.models.keys",
        "ValidatedFieldKey": "metaxy.models.keys",
        "ValidatedFeatureKeySequence": "metaxy.models.keys",
        "ValidatedFieldKeySequence": "metaxy.models.keys",
        "ValidatedFeatureKeyAdapter": "metaxy.models.keys",
        "ValidatedFieldKeyAdapter": "metaxy.models.keys",
        "ValidatedFeatureKeySequenceAdapter": "metaxy.models.keys",
        "ValidatedFieldKeySequenceAdapter": "metaxy.models.keys",
    },
    "metaxy.metadata_store.exceptions": {name: "metaxy.errors" for name in _STORE_ERRORS},
    "metaxy.metadata_store.base": {
        "VersioningEngineOptions": "metaxy.metadata_store.base:VersioningEngine",
    },
    "metaxy.config": {
        "InvalidConfigError": "metaxy.errors",
    },
    "metaxy.models.feature": {
        "FeatureGraph": "metaxy.models.graph",
        "current_graph": "metaxy.models.graph",
        "graph": "metaxy.models.graph",
        "get_feature_by_key": "metaxy.models.graph",
    },
    "metaxy.models.feature_selection": {
        "FeatureSelection": "metaxy.models.selection",
    },
    "metaxy.ext.dagster.observable": {
        "observable_metaxy_asset": "metaxy.ext.dagster.observation",
    },
    "metaxy.ext.dagster.observation_job": {
        "build_metaxy_observation_job": "metaxy.ext.dagster.observation",
        "build_metaxy_multi_observation_job": "metaxy.ext.dagster.observation",
    },
    "metaxy.ext.polars": {
        "DeltaMetadataStore": "metaxy.metadata_store.delta",
        "DeltaMetadataStoreConfig": "metaxy.metadata_store.delta",
    },
    # --- deprecated (see DEPRECATED) ---
    "metaxy.ext.metadata_stores": {
        "DuckDBMetadataStore": "metaxy.ext.duckdb",
        "DeltaMetadataStore": "metaxy.ext.polars.handlers.delta",
    },
    "metaxy.ext.metadata_stores.duckdb": {
        "DuckDBMetadataStore": "metaxy.ext.duckdb",
        "DuckDBMetadataStoreConfig": "metaxy.ext.duckdb",
        "ExtensionSpec": "metaxy.ext.duckdb",
    },
    "metaxy.ext.metadata_stores.delta": {
        "DeltaMetadataStore": "metaxy.ext.polars.handlers.delta",
        "DeltaMetadataStoreConfig": "metaxy.ext.polars.handlers.delta",
    },
}

# deprecated module -> the module to import from instead
DEPRECATED: dict[str, str] = {
    "metaxy.ext.metadata_stores": "metaxy.ext.duckdb / metaxy.ext.polars.handlers.delta",
    "metaxy.ext.metadata_stores.duckdb": "metaxy.ext.duckdb",
    "metaxy.ext.metadata_stores.delta": "metaxy.ext.polars.handlers.delta",
}


def resolve_alias(module: str, name: str) -> Any:
    """The canonical object behind ``module.name`` (no warning, no caching).

    Raises:
        AttributeError: ``module.name`` is not a documented alias.
    """
    target = ALIASES.get(module, {}).get(name)
    if target is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    home, _, attr = target.partition(":")
    return getattr(importlib.import_module(home), attr or name)


def alias_names(module: str) -> list[str]:
    """The documented alias names a module hosts (its ``__all__`` for an alias-only module)."""
    return sorted(ALIASES[module])


def alias_hooks(module: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for a module hosting aliases."""
    if module not in ALIASES:
        raise KeyError(f"{module!r} hosts no aliases. Hint: add its row to metaxy._compat.ALIASES.")
    deprecated_for = DEPRECATED.get(module)

    def __getattr__(name: str) -> Any:
        value = resolve_alias(module, name)
        if deprecated_for is not None:
            # Warn on every access (not cached), so each use site hears about it.
            warnings.warn(
                f"{module} is deprecated: import {name} from {deprecated_for} instead.",
                DeprecationWarning,
                stacklevel=2,
            )
        else:
            setattr(sys.modules[module], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module])) | set(ALIASES[module]))

    return __getattr__, __dir__
