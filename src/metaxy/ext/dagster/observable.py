"""``metaxy.ext.dagster.observable``: ``observable_metaxy_asset`` (defined in ``metaxy.ext.dagster.observation``).

An alias-only module kept for the published import path; its names are listed in (and resolved
by) ``metaxy._compat.ALIASES``.
"""

from __future__ import annotations

from metaxy._compat import alias_hooks, alias_names

__getattr__, __dir__ = alias_hooks(__name__)
__all__ = alias_names(__name__)
