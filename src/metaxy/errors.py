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
    │   │   └── ConfigValidationError (pydantic.ValidationError)  a setting fails validation
    │   └── EntrypointLoadError (ImportError)          a feature entry point failed to import
    ├── FilterParseError (ValueError)                  a SQL filter string that is malformed or unsupported
    ├── ExternalFeatureVersionMismatchError            external feature versions differ from the store
    └── MetadataStoreError
        ├── StoreNotOpenError                          closed store, or write in read mode
        │   └── ReadOnlyStoreError                     write to a store configured read-only
        ├── FeatureNotFoundError (KeyError)            feature absent from a store and its fallbacks
        ├── SystemDataNotFoundError (FeatureNotFoundError)  system table never pushed
        ├── TableNotFoundError (FeatureNotFoundError)  table missing and auto_create_tables is off
        ├── FieldNotFoundError (KeyError)              published name only, never raised
        ├── ColumnNotFoundError (KeyError)             a filter / columns= names a column the table lacks
        ├── MetadataSchemaError (ValueError)           frame lacks / mistypes a required column
        ├── DependencyError (ValueError)               upstream metadata unusable for a resolve
        ├── RootFeatureError (ValueError)              resolve_update of a root without samples
        ├── HashAlgorithmNotSupportedError (ValueError)
        ├── VersioningEngineMismatchError              "native" engine asked for foreign frames
        ├── StoreCapabilityError (NotImplementedError) a backend cannot do what was asked
        ├── StoreBusyError                             another process (or thread) holds the store
        └── BackendError                               a driver error, translated (``raise ... from``)

Every message (and every warning's) is passed through :func:`metaxy._secrets.mask_text` when the
exception is created, so no password, token or storage key reaches a log, a terminal or Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic_core import PydanticCustomError, ValidationError

from metaxy._secrets import MASK, mask_text, mask_value

__all__ = [
    "BackendError",
    "ColumnCollisionError",
    "ColumnNotFoundError",
    "ConfigError",
    "ConfigValidationError",
    "DependencyError",
    "DistributedWriteError",
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
    "ReadOnlyStoreError",
    "RootFeatureError",
    "StoreBusyError",
    "StoreCapabilityError",
    "StoreNotOpenError",
    "SystemDataNotFoundError",
    "TableNotFoundError",
    "UnresolvedExternalFeatureWarning",
    "VersioningEngineMismatchError",
]


def _masked_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(mask_text(a) if isinstance(a, str) else a for a in args)


class MetaxyError(Exception):
    """Root of every error metaxy raises. Secrets in the message are masked."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*_masked_args(args))


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


class ConfigValidationError(InvalidConfigError, ValidationError):
    """A setting (from arguments, a ``METAXY_*`` variable or a config file) failed validation.

    Also a ``pydantic.ValidationError``, so code that catches that keeps working; ``errors()``
    lists the problems, with credential values replaced by ``***``. The message names each
    setting and its value and ends with a hint; it never echoes a secret.
    """

    message: str

    @classmethod
    def from_errors(cls, title: str, errors: list[Any], message: str) -> ConfigValidationError:
        """Build the error from pydantic's ``exc.errors()`` and the message to show.

        Args:
            title: The model's name.
            errors: ``ValidationError.errors()`` of the original error.
            message: The message (it is masked).

        Returns:
            The error, with each problem's ``input`` masked.
        """
        line_errors: list[Any] = []
        for err in errors:
            loc = tuple(err.get("loc") or ())
            key = loc[-1] if loc else None
            kind = str(err.get("type", "value_error"))
            line_errors.append(
                {
                    "type": PydanticCustomError(kind, mask_text(str(err.get("msg", "")))),
                    "loc": loc,
                    "input": mask_value(key, err.get("input", MASK)),
                }
            )
        error = cls.from_exception_data(title, line_errors)
        error.message = mask_text(message)
        return error

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # pydantic's own reduce would rebuild a plain ValidationError without the message.
        return (type(self).from_errors, (self.title, self.errors(include_url=False), self.message))


class EntrypointLoadError(ConfigError, ImportError):
    """A feature entry point (module or package entry point) failed to import."""


# --- filters ---------------------------------------------------------------------------------


class FilterParseError(MetaxyError, ValueError):
    """A SQL filter string is malformed or uses a construct metaxy does not support."""


# --- external features -----------------------------------------------------------------------


class ExternalFeatureVersionMismatchError(MetaxyError):
    """External features' versions differ from the definitions loaded from the store."""


class MetaxyWarning(UserWarning):
    """Base of metaxy's warnings. Secrets in the message are masked."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*_masked_args(args))


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


class ReadOnlyStoreError(StoreNotOpenError):
    """A write, delete or drop was asked of a store configured read-only; nothing was changed."""


class FeatureNotFoundError(KeyErrorMessageMixin, MetadataStoreError, KeyError):
    """A feature has no table in the store nor in any fallback store."""

    def __init__(self, message: str, keys: Iterable[Any] = ()) -> None:
        self.keys = list(keys)
        super().__init__(message)


class SystemDataNotFoundError(FeatureNotFoundError):
    """A system table was read before anything was pushed to it."""


class TableNotFoundError(FeatureNotFoundError):
    """A table is missing and the store may not create it."""


# Never raised: an unknown field is a ``FieldDependencyError`` (definitions) or a
# ``MetadataSchemaError`` (frames). Kept as an importable name because the published API documents
# ``metaxy.metadata_store.exceptions.FieldNotFoundError`` (metaxy._compat, tests/compat), so
# ``except FieldNotFoundError`` in user code keeps working.
class FieldNotFoundError(KeyErrorMessageMixin, MetadataStoreError, KeyError):
    """A field is not part of a feature (published name; metaxy raises more specific errors)."""


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


class DistributedWriteError(MetadataStoreError):
    """A distributed (Ray) write of metadata failed after its retries: the failed task's block was
    not committed; blocks committed before the failure stay, each whole (each is committed once)."""
