"""``metaxy.ext.duckdb.DuckDBMetadataStore``: the public import path of the DuckDB store."""

from __future__ import annotations

from metaxy.metadata_store.duckdb import DuckDBDialect, DuckDBMetadataStore, DuckDBMetadataStoreConfig, ExtensionSpec

__all__ = ["DuckDBDialect", "DuckDBMetadataStore", "DuckDBMetadataStoreConfig", "ExtensionSpec"]
