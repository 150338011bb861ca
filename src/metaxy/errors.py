"""Every error metaxy raises, in one tree.

Messages name the offending value and end with a hint. Errors subclass the built-in
exception a caller would naturally catch (``KeyError`` for lookups, ``ValueError`` for
bad values) so code written against the published Metaxy library keeps working::

    MetaxyError
    ├── KeyValidationError (ValueError)                invalid feature / field key part
    ├── FeatureDefinitionError (ValueError)            bad FeatureSpec / FeatureDep / FieldDep ...
    │   ├── DuplicateFeatureError                      key already registered by another class
    │   ├── InvalidRenameError                         rename onto a system / id column, duplicates
    │   └── ColumnCollisionError                       two upstreams bring the same column
    ├── GraphError
    │   ├── FeatureNotInGraphError (KeyError)          lookup of an unknown key in a FeatureGraph
    │   ├── MetaxyMissingFeatureDependency (KeyError)  a dep names a feature absent from the graph
    │   ├── FieldDependencyError (KeyError)            a FieldDep names a missing feature or field
    │   ├── NoUpstreamFieldsError (RuntimeError)       automatic mapping found no parent field
    │   └── FeatureGraphCycleError (ValueError)        features depend on each other in a cycle
    ├── ConfigError
    │   ├── InvalidConfigError (ValueError)            unreadable / invalid configuration, unknown store
    │   └── EntrypointLoadError (ImportError)          a feature entry point failed to import
    ├── FilterParseError (ValueError)                  a SQL filter string that is malformed or unsupported
    ├── ExternalFeatureVersionMismatchError            external feature versions differ from the store
    └── MetadataStoreError
        ├── StoreNotOpenError                          closed store, or write in read mode
        ├── FeatureNotFoundError (KeyError)            feature absent from a store and its fallbacks
        ├── SystemDataNotFoundError (FeatureNotFoundError)  system table never pushed
        ├── TableNotFoundError (FeatureNotFoundError)  table missing and auto_create_tables is off
        ├── FieldNotFoundError (KeyError)
        ├── ColumnNotFoundError (KeyError)             a filter / columns= names a column the table lacks
        ├── MetadataSchemaError (ValueError)           frame lacks / mistypes a required column
        ├── DependencyError (ValueError)               upstream metadata unusable for a resolve
        ├── RootFeatureError (ValueError)              resolve_update of a root without samples
        ├── HashAlgorithmNotSupportedError (ValueError)
        ├── VersioningEngineMismatchError              "native" engine asked for foreign frames
        ├── StoreCapabilityError (NotImplementedError) a backend cannot do what was asked
        ├── StoreBusyError                             another process (or thread) holds the store
        └── BackendError                               a driver error, translated (``raise ... from``)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "BackendError",
    "ColumnCollisionError",
    "ColumnNotFoundError",
    "ConfigError",
    "DependencyError",
    "DuplicateFeatureError",
    "EntrypointLoadError",
    "ExternalFeatureVersionMismatchError",
    "ExternalFeatureVersionMismatchWarning",
    "FeatureDefinitionError",
    "FeatureGraphCycleError",
    "FeatureNotFoundError",
    "FeatureNotInGraphError",
    "FieldDependencyError",
    "FieldNotFoundError",
    "FilterParseError",
    "GraphError",
    "HashAlgorithmNotSupportedError",
    "InvalidConfigError",
    "InvalidRenameError",
    "InvalidStoredFeatureWarning",
    "KeyValidationError",
    "MetadataSchemaError",
    "MetadataStoreError",
    "MetaxyError",
    "MetaxyMissingFeatureDependency",
    "MetaxyWarning",
    "NoUpstreamFieldsError",
    "PolarsMaterializationWarning",
    "RootFeatureError",
    "StoreBusyError",
    "StoreCapabilityError",
    "StoreNotOpenError",
    "SystemDataNotFoundError",
    "TableNotFoundError",
    "UnresolvedExternalFeatureWarning",
    "VersioningEngineMismatchError",
]


class MetaxyError(Exception):
    """Root of every error metaxy raises."""


def _fmt_keys(keys: Iterable[Any]) -> str:
    shown = sorted(str(k) for k in keys)
    if not shown:
        return "(none)"
    more = "" if len(shown) <= 20 else f", ... ({len(shown) - 20} more)"
    return ", ".join(shown[:20]) + more


class KeyErrorMessageMixin(Exception):
    """``KeyError.__str__`` quotes its argument; our messages are sentences, so print them plain."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- definitions -----------------------------------------------------------------------------


class KeyValidationError(MetaxyError, ValueError):
    """A feature or field key (or one of its parts) does not follow the key rules."""


class FeatureDefinitionError(MetaxyError, ValueError):
    """A feature definition (spec, dependency, field) is invalid."""


class DuplicateFeatureError(FeatureDefinitionError):
    """Two different definitions claim the same feature key in one graph."""


class InvalidRenameError(FeatureDefinitionError):
    """A ``FeatureDep.rename`` targets a system column, an id column, or a name used twice."""


class ColumnCollisionError(FeatureDefinitionError):
    """Two prepared upstream frames carry the same non-id column."""


# --- graph -----------------------------------------------------------------------------------


class GraphError(MetaxyError):
    """The feature graph is inconsistent."""


class FeatureNotInGraphError(KeyErrorMessageMixin, GraphError, KeyError):
    """A feature key is not registered in the graph."""

    def __init__(self, key: Any, available: Iterable[Any] = ()) -> None:
        self.key = key
        super().__init__(
            f"Feature '{key}' is not in the feature graph. Available features: {_fmt_keys(available)}. "
            "Hint: make sure the module defining it was imported (config `entrypoints`) or use "
            "`graph.use()` to activate the graph that holds it."
        )


class MetaxyMissingFeatureDependency(KeyErrorMessageMixin, GraphError, KeyError):
    """A feature depends on a feature that is not in the graph."""

    def __init__(self, feature: Any, missing: Any) -> None:
        self.feature = feature
        self.missing = missing
        super().__init__(
            f"Feature '{feature}' depends on '{missing}', which is not in the feature graph. "
            f"Hint: import or define '{missing}' (or load it from a store with sync) before planning '{feature}'."
        )


class FieldDependencyError(KeyErrorMessageMixin, GraphError, KeyError):
    """A ``FieldDep`` names a feature the feature does not depend on, or a field that does not exist."""


class NoUpstreamFieldsError(GraphError, RuntimeError):
    """Automatic field mapping found no upstream field for a downstream field."""


class FeatureGraphCycleError(GraphError, ValueError):
    """Features depend on each other in a cycle."""

    def __init__(self, cycle: list[Any]) -> None:
        self.cycle = cycle
        path = " -> ".join(str(k) for k in cycle)
        super().__init__(
            f"Feature dependency cycle: {path}. Hint: a feature cannot depend on itself, directly or "
            "through its upstream features; remove one of these deps."
        )


# --- configuration ---------------------------------------------------------------------------


class ConfigError(MetaxyError):
    """The configuration is invalid or could not be loaded."""


class InvalidConfigError(ConfigError, ValueError):
    """A configuration file, environment variable or store entry is invalid."""


class EntrypointLoadError(ConfigError, ImportError):
    """A feature entry point (module or package entry point) failed to import."""


# --- filters ---------------------------------------------------------------------------------


class FilterParseError(MetaxyError, ValueError):
    """A SQL filter string is malformed or uses a construct metaxy does not support."""


# --- external features -----------------------------------------------------------------------


class ExternalFeatureVersionMismatchError(MetaxyError):
    """External features' versions differ from the definitions loaded from the store."""


class MetaxyWarning(UserWarning):
    """Base of metaxy's warnings."""


class ExternalFeatureVersionMismatchWarning(MetaxyWarning):
    """External features' versions differ from the definitions loaded from the store."""


class UnresolvedExternalFeatureWarning(MetaxyWarning):
    """External feature stubs could not be replaced by stored definitions."""


class InvalidStoredFeatureWarning(MetaxyWarning):
    """A stored feature definition could not be deserialised and was skipped."""


class PolarsMaterializationWarning(MetaxyWarning):
    """Frames of a foreign implementation were materialised to Polars to run a resolve."""


# --- stores ----------------------------------------------------------------------------------


class MetadataStoreError(MetaxyError):
    """An operation on a metadata store failed."""


class StoreNotOpenError(MetadataStoreError):
    """The store is closed, or open in read mode for a write operation."""


class FeatureNotFoundError(KeyErrorMessageMixin, MetadataStoreError, KeyError):
    """A feature has no table in the store nor in any fallback store."""

    def __init__(self, message: str, keys: Iterable[Any] = ()) -> None:
        self.keys = list(keys)
        super().__init__(message)


class SystemDataNotFoundError(FeatureNotFoundError):
    """A system table was read before anything was pushed to it."""


class TableNotFoundError(FeatureNotFoundError):
    """A table is missing and the store may not create it."""


class FieldNotFoundError(KeyErrorMessageMixin, MetadataStoreError, KeyError):
    """A field is not part of a feature."""


class ColumnNotFoundError(KeyErrorMessageMixin, MetadataStoreError, KeyError):
    """A filter, ``columns=`` list or delete condition names a column the data does not have."""

    def __init__(self, message: str, columns: Iterable[str] = ()) -> None:
        self.columns = list(columns)
        super().__init__(message)


class MetadataSchemaError(MetadataStoreError, ValueError):
    """A frame lacks, or mistypes, a column the operation needs."""


class DependencyError(MetadataStoreError, ValueError):
    """Upstream metadata cannot be used for a resolve."""


class RootFeatureError(MetadataStoreError, ValueError):
    """``resolve_update`` was called for a root feature without ``samples``."""


class HashAlgorithmNotSupportedError(MetadataStoreError, ValueError):
    """The store cannot compute the requested hash algorithm."""


class VersioningEngineMismatchError(MetadataStoreError):
    """The native versioning engine was required but frames of another implementation were given."""


class StoreCapabilityError(MetadataStoreError, NotImplementedError):
    """The backend does not support the requested operation."""


class StoreBusyError(MetadataStoreError):
    """Another process holds the store's lock and it was not released in time, or a store object
    open in one thread was used from another."""


class BackendError(MetadataStoreError):
    """A database or storage driver raised an error; the original is chained as ``__cause__``."""
