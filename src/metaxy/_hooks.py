"""Wiring points between layers, filled by the composition root (``metaxy/__init__.py``).

A lower layer calls these; a higher one registers what runs. This keeps every import pointing
down: the store runs the external-feature sync before a read without importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["before_store_access", "run_before_store_access"]

#: Called with the store at the start of ``MetadataStore.read`` / ``resolve_update``.
before_store_access: list[Callable[[Any], None]] = []


def run_before_store_access(store: Any) -> None:
    for hook in before_store_access:
        hook(store)
