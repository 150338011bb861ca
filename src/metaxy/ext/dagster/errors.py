"""Errors raised by the Dagster integration.

::

    MetaxyError (metaxy.errors)
    └── MetaxyDagsterError (ValueError)     a Dagster object cannot be linked to a Metaxy feature
        ├── MetaxyIOManagerError            the IO manager was used on an output it cannot handle
        └── MetaxyPartitionError            rows or columns do not fit the asset's partitions or slice
"""

from __future__ import annotations

from metaxy.errors import MetaxyError

__all__ = ["MetaxyDagsterError", "MetaxyIOManagerError", "MetaxyPartitionError"]


class MetaxyDagsterError(MetaxyError, ValueError):
    """A Dagster asset, spec or argument cannot be linked to a Metaxy feature as asked."""


class MetaxyIOManagerError(MetaxyDagsterError):
    """``MetaxyIOManager`` was asked to store or load an asset that is not a Metaxy feature."""


class MetaxyPartitionError(MetaxyDagsterError):
    """An asset's output does not fit its partitions: rows outside its ``metaxy/partition`` slice,
    or a ``partition_by`` / slice column the feature's rows do not have. Raised before anything
    is written."""
