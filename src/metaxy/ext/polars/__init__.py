"""Polars-engine store integrations (``metaxy.ext.polars.handlers.*``).

The stores are re-exported here (``from metaxy.ext.polars import DeltaMetadataStore``) lazily,
through ``metaxy._compat.ALIASES``, so that importing a handler pulls in only that handler's own
module.
"""

from __future__ import annotations

from metaxy._compat import alias_hooks, alias_names

__getattr__, __dir__ = alias_hooks(__name__)
__all__ = alias_names(__name__)
