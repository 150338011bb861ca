"""Feature discovery: importing the modules that define features.

Features register themselves in the active graph when their class is created, so discovery is
importing the right modules. :func:`load_features` imports, in order:

1. the modules listed in the config's ``entrypoints``;
2. the ``metaxy.project`` entry points of installed distributions (a callable is called, a
   module is imported), restricted to the current project's distribution and its requirements
   when the project is itself an installed distribution;
3. the comma-separated modules in ``METAXY_ENTRYPOINT*`` environment variables, taking the
   variables in sorted name order.

Every module or entry point is loaded once per process; calling :func:`load_features` again
(or from inside a module it is importing) does nothing for what was already loaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from types import ModuleType

from metaxy.errors import EntrypointLoadError

__all__ = [
    "ENTRYPOINT_ENV_PREFIX",
    "PACKAGE_ENTRYPOINT_GROUP",
    "load_features",
    "load_module_entrypoint",
    "load_package_entrypoints",
]

PACKAGE_ENTRYPOINT_GROUP = "metaxy.project"
"""Entry point group packages use to declare their feature modules."""

ENTRYPOINT_ENV_PREFIX = "METAXY_ENTRYPOINT"
"""Environment variables whose name starts with this list extra modules (comma-separated)."""

_lock = threading.RLock()
_loading = False
_loaded_entry_points: set[str] = set()
_loaded_modules: set[str] = set()


def _normalize_dist_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def load_module_entrypoint(module: str) -> ModuleType:
    """Import one module that defines features.

    Args:
        module: Dotted module path, e.g. ``"my_project.features"``.

    Returns:
        The imported module (already imported modules are returned as they are).

    Raises:
        EntrypointLoadError: Importing the module raised; the original error is chained.
    """
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise EntrypointLoadError(
            f"Failed to load feature entrypoint module '{module}': {type(exc).__name__}: {exc}. "
            "Hint: check that the module path is spelled correctly and importable from this "
            "environment (installed, or on PYTHONPATH), and that importing it does not raise."
        ) from exc


def _requirement_names(dist: importlib.metadata.Distribution) -> list[str]:
    """Names of a distribution's requirements whose environment markers hold (extras excluded)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging is optional: fall back to skipping requirements with markers
        names = []
        for raw in dist.requires or []:
            if ";" not in raw:
                match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", raw)
                if match:
                    names.append(match.group(1))
        return names
    names = []
    for raw in dist.requires or []:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def _project_distributions(project: str) -> set[str] | None:
    """The project's distribution and its transitive requirements, or None if not installed."""
    try:
        root = importlib.metadata.distribution(project)
    except importlib.metadata.PackageNotFoundError:
        return None
    seen: set[str] = set()
    pending = [root]
    while pending:
        dist = pending.pop()
        name = _normalize_dist_name(dist.metadata["Name"] or "")
        if name in seen:
            continue
        seen.add(name)
        for requirement in _requirement_names(dist):
            try:
                pending.append(importlib.metadata.distribution(requirement))
            except importlib.metadata.PackageNotFoundError:
                continue
    return seen


def load_package_entrypoints(group: str = PACKAGE_ENTRYPOINT_GROUP, *, filter_project: str | None = None) -> list[str]:
    """Load the entry points installed distributions declare in ``group``.

    An entry point naming a callable (``pkg.module:load``) is called; one naming a module
    (``pkg.features``) is imported. Each entry point is loaded once per process.

    Args:
        group: Entry point group.
        filter_project: When this names an installed distribution, only entry points of that
            distribution and its transitive requirements are loaded.

    Returns:
        The entry points loaded by this call, as ``"<distribution>:<name>"`` strings.

    Raises:
        EntrypointLoadError: Loading or calling an entry point raised; the error is chained.
    """
    allowed = _project_distributions(filter_project) if filter_project else None
    loaded = []
    for entry_point in sorted(importlib.metadata.entry_points(group=group), key=lambda ep: ep.name):
        dist_name = entry_point.dist.name if entry_point.dist is not None else ""
        if allowed is not None and _normalize_dist_name(dist_name) not in allowed:
            continue
        ident = f"{dist_name}:{entry_point.name}"
        with _lock:
            if ident in _loaded_entry_points:
                continue
            try:
                target = entry_point.load()
                if callable(target) and not isinstance(target, ModuleType):
                    target()
            except Exception as exc:
                raise EntrypointLoadError(
                    f"Failed to load '{group}' entry point '{entry_point.name}' = '{entry_point.value}' "
                    f"of distribution '{dist_name}': {type(exc).__name__}: {exc}. "
                    "Hint: fix the module/function it points to, or reinstall the distribution if "
                    "the entry point is stale."
                ) from exc
            _loaded_entry_points.add(ident)
        loaded.append(ident)
    return loaded


def _env_entrypoint_modules() -> list[str]:
    modules: list[str] = []
    for var in sorted(v for v in os.environ if v.startswith(ENTRYPOINT_ENV_PREFIX)):
        value = os.environ[var].strip()
        if value.startswith("["):  # METAXY_ENTRYPOINTS may hold the config field as a JSON list
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                modules.extend(str(m).strip() for m in parsed if str(m).strip())
                continue
        modules.extend(part.strip() for part in value.split(",") if part.strip())
    return modules


def _import_all(modules: Iterable[str]) -> list[str]:
    loaded = []
    for module in modules:
        already = module in _loaded_modules
        load_module_entrypoint(module)
        if not already:
            _loaded_modules.add(module)
            loaded.append(module)
    return loaded


def load_features(entrypoints: Sequence[str] | None = None, filter_project: str | None = None) -> list[str]:
    """Import every source of feature definitions.

    Args:
        entrypoints: Modules to import first (default: ``entrypoints`` of the active config, if
            one is set).
        filter_project: Restrict package entry points to this project's distribution and its
            requirements (default: the active config's ``project``, if one is set).

    Returns:
        What this call loaded that was not loaded before: module names and
        ``"<distribution>:<name>"`` entry points. A call made while another is running in the
        same thread (a feature module calling ``load_features``) returns ``[]``.

    Raises:
        EntrypointLoadError: A module or entry point failed to import; the error is chained.
    """
    global _loading
    if entrypoints is None or filter_project is None:
        from metaxy.config._model import MetaxyConfig

        if MetaxyConfig.is_set():
            config = MetaxyConfig.get()
            entrypoints = config.entrypoints if entrypoints is None else entrypoints
            filter_project = config.project if filter_project is None else filter_project
    with _lock:
        if _loading:
            return []
        _loading = True
        try:
            loaded = _import_all(entrypoints or [])
            loaded += load_package_entrypoints(filter_project=filter_project)
            loaded += _import_all(_env_entrypoint_modules())
        finally:
            _loading = False
    return loaded
