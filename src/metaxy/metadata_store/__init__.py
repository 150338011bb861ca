"""Metadata stores: the ``MetadataStore`` API and its backends.

Only ``memory`` lives here eagerly; backends with drivers (DuckDB, Delta, PostgreSQL ...) are
imported from their own modules (``metaxy.ext.duckdb`` ...) so ``import metaxy`` stays light.
"""

from __future__ import annotations

from metaxy.errors import (
    DependencyError,
    FeatureNotFoundError,
    FieldNotFoundError,
    HashAlgorithmNotSupportedError,
    MetadataSchemaError,
    MetadataStoreError,
    StoreNotOpenError,
    SystemDataNotFoundError,
    TableNotFoundError,
    VersioningEngineMismatchError,
)

from .base import MetadataStore, MetadataStoreConfig, VersioningEngine
from .buffered import BufferedMetadataWriter
from .memory import InMemoryMetadataStore
from .system import FEATURE_VERSIONS_KEY, PushResult, SystemTableStorage
from .types import AccessMode, Increment, LazyIncrement, PolarsIncrement, PolarsLazyIncrement

__all__ = [
    "FEATURE_VERSIONS_KEY",
    "AccessMode",
    "BufferedMetadataWriter",
    "DependencyError",
    "FeatureNotFoundError",
    "FieldNotFoundError",
    "HashAlgorithmNotSupportedError",
    "InMemoryMetadataStore",
    "Increment",
    "LazyIncrement",
    "MetadataSchemaError",
    "MetadataStore",
    "MetadataStoreConfig",
    "MetadataStoreError",
    "PolarsIncrement",
    "PolarsLazyIncrement",
    "PushResult",
    "StoreNotOpenError",
    "SystemDataNotFoundError",
    "SystemTableStorage",
    "TableNotFoundError",
    "VersioningEngine",
    "VersioningEngineMismatchError",
]
