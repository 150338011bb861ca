"""Errors raised by the Dagster integration.

::

    MetaxyError (metaxy.errors)
    └── MetaxyDagsterError (ValueError)     a Dagster object cannot be linked to a Metaxy feature
        └── MetaxyIOManagerError            the IO manager was used on an output it cannot handle
"""

from __future__ import annotations

from metaxy.errors import MetaxyError

__all__ = ["MetaxyDagsterError", "MetaxyIOManagerError"]


class MetaxyDagsterError(MetaxyError, ValueError):
    """A Dagster asset, spec or argument cannot be linked to a Metaxy feature as asked."""


class MetaxyIOManagerError(MetaxyDagsterError):
    """``MetaxyIOManager`` was asked to store or load an asset that is not a Metaxy feature."""
