"""``MetadataStore``: the store API, written once on top of the backend contract.

A backend implements the primitives of :class:`~metaxy.metadata_store.contract.StoreBackend`
(open/close, list/exists/drop a table, scan, append atomically, delete where a parsed filter
holds, optionally read and resolve natively) and declares its
:class:`~metaxy.metadata_store.contract.StoreCapabilities`; it overrides no public method.
The public methods live in layers, one module per concept:

- ``_store_core.py``: construction, per-thread open state, versioning settings, fallbacks;
- ``_store_read.py``: ``read``, ``has_feature``, ``list_features``;
- ``_store_write.py``: ``write``, ``delete``, ``copy_metadata``;
- ``_store_resolve.py``: ``resolve_update``, ``compute_provenance``, ``rebase``.

See docs/backends.md for the guide to writing a backend.
"""

from __future__ import annotations

from metaxy._compat import alias_hooks

from ._store_core import MetadataStoreConfig, VersioningEngine
from ._store_resolve import FiltersByFeature, ResolvingStore

__all__ = ["FiltersByFeature", "MetadataStore", "MetadataStoreConfig", "VersioningEngine"]


class MetadataStore(ResolvingStore):
    """Append-only, per-feature metadata tables with merge-on-read and incremental resolution.

    Use as a context manager: ``with store:`` opens for reading, ``with store.open("w"):`` for
    writing. Opens nest; the innermost mode is in effect. Each thread opens a store for itself.

    Subclass it to add a backend: implement the contract's primitives and set ``capabilities``
    (docs/backends.md).
    """


# Documented aliases hosted here: see metaxy._compat.ALIASES.
__getattr__, __dir__ = alias_hooks(__name__)
