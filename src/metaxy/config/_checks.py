"""Config-time checks of settings whose type alone does not make them meaningful.

A store option is checked here when the configuration is validated (before any store class is
imported) and again when a store is built or constructed directly, so ``versioning_engine="gpu"``
or ``lock_timeout=nan`` is refused with the setting's name, long before it could make a pipeline
misbehave. Fallback-store chains are checked for unknown names and cycles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from metaxy._secrets import mask_value
from metaxy.config._masking import env_variable_for
from metaxy.errors import InvalidConfigError

__all__ = [
    "VERSIONING_ENGINES",
    "check_store_settings",
    "config_problems",
    "fallback_cycle",
    "fallback_problems",
    "store_setting_problems",
]

VERSIONING_ENGINES = ("auto", "native", "polars")
"""The values of ``versioning_engine``."""


def _as_list(value: Any) -> Any:
    """``METAXY_*`` variables deliver lists as JSON text; decode such text."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _versioning_engine_problem(value: Any) -> str | None:
    if value in VERSIONING_ENGINES:
        return None
    return f"is not one of {', '.join(repr(v) for v in VERSIONING_ENGINES)}"


def _lock_timeout_problem(value: Any) -> str | None:
    number: float | None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    else:
        number = None
    if number is None:
        return "is not a number of seconds"
    if not math.isfinite(number) or number < 0:
        return "must be a finite number of seconds >= 0 (0: do not wait for another process's lock)"
    return None


def _fallback_stores_problem(value: Any) -> str | None:
    value = _as_list(value)
    if isinstance(value, str) or not isinstance(value, Sequence):
        return "is not a list of store names"
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "versioning_engine": _versioning_engine_problem,
    "lock_timeout": _lock_timeout_problem,
    "fallback_stores": _fallback_stores_problem,
}


def store_setting_problems(
    options: Mapping[str, Any], *, prefix: str = "", env_prefix: str | None = None
) -> list[str]:
    """What is meaningless in a store's options (``[stores.<name>.config]``).

    Args:
        options: The store options; unknown keys are left to the store's config model.
        prefix: Put before each option's name, e.g. ``"stores.dev.config."``.
        env_prefix: Name the ``METAXY_*`` variable an option came from (``"METAXY_"``).

    Returns:
        One sentence per problem, naming the setting and its value (empty when all is well).
    """
    problems = []
    for key, check in _CHECKS.items():
        if key not in options or options[key] is None:
            continue
        reason = check(options[key])
        if reason is None:
            continue
        setting = f"{prefix}{key}"
        var = env_variable_for(setting.split("."), env_prefix) if env_prefix else None
        source = f" (from environment variable {var})" if var else ""
        problems.append(f"`{setting}` = {mask_value(key, options[key])!r}{source} {reason}")
    return problems


def check_store_settings(owner: str, **settings: Any) -> None:
    """Refuse meaningless store settings given to a store's constructor.

    Args:
        owner: The store class name (for the message).
        **settings: The settings to check, e.g. ``versioning_engine="auto"``.

    Raises:
        InvalidConfigError: A setting is meaningless; the message names it and its value.
    """
    problems = store_setting_problems(settings)
    if problems:
        raise InvalidConfigError(
            f"Invalid {owner} settings: {'; '.join(problems)}. "
            "Hint: correct the named setting(s); see the store's documentation for their meaning."
        )


def _fallback_names(entry: Any) -> list[str]:
    config = getattr(entry, "config", None)
    if config is None and isinstance(entry, Mapping):
        config = entry.get("config")
    names = _as_list(config.get("fallback_stores")) if isinstance(config, Mapping) else None
    if isinstance(names, str) or not isinstance(names, Sequence):
        return []
    return [n for n in names if isinstance(n, str)]


def fallback_cycle(stores: Mapping[str, Any], start: str) -> list[str] | None:
    """The first fallback cycle reachable from store ``start``, as a closed path of names.

    Args:
        stores: Store entries by name (``StoreConfig`` objects or their dicts).
        start: The store to start from.

    Returns:
        E.g. ``["dev", "staging", "dev"]``, or None when the chain ends.
    """
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_path:
            return [*path[path.index(name) :], name]
        if name in done or name not in stores:
            return None
        path.append(name)
        on_path.add(name)
        for fallback in _fallback_names(stores[name]):
            cycle = visit(fallback)
            if cycle is not None:
                return cycle
        path.pop()
        on_path.discard(name)
        done.add(name)
        return None

    return visit(start)


def config_problems(stores: Mapping[str, Any], *, env_prefix: str | None = None) -> list[str]:
    """Every meaningless store option, unknown fallback name and fallback cycle of a config.

    Args:
        stores: Store entries by name (``StoreConfig`` objects).
        env_prefix: Name the ``METAXY_*`` variables options came from.

    Returns:
        One sentence per problem.
    """
    problems = []
    for name in sorted(stores):
        options = getattr(stores[name], "config", None)
        if isinstance(options, Mapping):
            problems += store_setting_problems(options, prefix=f"stores.{name}.config.", env_prefix=env_prefix)
    return problems + fallback_problems(stores, env_prefix=env_prefix)


def fallback_problems(stores: Mapping[str, Any], *, env_prefix: str | None = None) -> list[str]:
    """Unknown names and cycles in the fallback chains of all stores.

    Args:
        stores: Store entries by name.
        env_prefix: Name the ``METAXY_*`` variables lists came from.

    Returns:
        One sentence per problem.
    """
    problems = []
    for name in sorted(stores):
        unknown = [n for n in _fallback_names(stores[name]) if n not in stores]
        if unknown:
            loc = ("stores", name, "config", "fallback_stores")
            var = env_variable_for(loc, env_prefix) if env_prefix else None
            source = f" (from environment variable {var})" if var else ""
            problems.append(
                f"`{'.'.join(loc)}`{source} names unknown store(s) {', '.join(map(repr, unknown))} "
                f"(configured stores: {', '.join(sorted(stores))})"
            )
    seen: set[frozenset[str]] = set()
    for name in sorted(stores):
        cycle = fallback_cycle(stores, name)
        if cycle is not None and frozenset(cycle) not in seen:
            seen.add(frozenset(cycle))
            problems.append(f"fallback stores form a cycle: {' -> '.join(cycle)}")
    return problems
