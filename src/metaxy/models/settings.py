"""Ambient settings the definitions layer reads (project, hash truncation, Map columns).

The configuration layer provides them (``metaxy/__init__.py`` registers a provider reading
``MetaxyConfig``); models and versioning never import the configuration. Stores fix the
versioning settings when they open and pass them to the executors explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AmbientSettings", "current_settings", "register_settings_provider"]


@dataclass(frozen=True)
class AmbientSettings:
    """The settings of the active configuration that definitions and stores depend on."""

    project: str | None = None
    hash_truncation_length: int = 8
    enable_map_datatype: bool = False
    auto_create_tables: bool = False


_provider: list[Callable[[], AmbientSettings]] = []


def register_settings_provider(provider: Callable[[], AmbientSettings]) -> None:
    """Make ``provider`` the source of :func:`current_settings` (the last registration wins)."""
    _provider[:] = [provider]


def current_settings() -> AmbientSettings:
    """The active settings (the defaults when no provider is registered)."""
    return _provider[0]() if _provider else AmbientSettings()
