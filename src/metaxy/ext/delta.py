"""The Delta Lake store (short import path of ``metaxy.ext.polars.handlers.delta``).

Importing this module does not import ``deltalake`` (install ``metaxy[delta]`` to use the store).
"""

from __future__ import annotations

from metaxy.metadata_store.delta import DeltaLayout, DeltaMetadataStore, DeltaMetadataStoreConfig

__all__ = ["DeltaLayout", "DeltaMetadataStore", "DeltaMetadataStoreConfig"]
