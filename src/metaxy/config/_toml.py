"""Finding, reading and writing configuration files.

Everything here works on plain dictionaries; validation happens in ``MetaxyConfig``.

- :func:`find_config_file` walks directories upward looking for ``metaxy.toml`` or a
  ``pyproject.toml`` with a non-empty ``[tool.metaxy]`` table.
- :func:`read_config_file` parses one file, expands ``${VAR}`` / ``${VAR:-default}`` in every
  string and resolves the ``extend`` chain.
- :func:`dumps_toml` renders a dictionary as TOML with ``tomli-w`` (the standard library only reads TOML).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from metaxy.errors import InvalidConfigError

__all__ = [
    "CONFIG_FILE_NAME",
    "PYPROJECT_FILE_NAME",
    "dumps_toml",
    "expand_env_vars",
    "find_config_file",
    "merge_extended",
    "read_config_file",
]

CONFIG_FILE_NAME = "metaxy.toml"
PYPROJECT_FILE_NAME = "pyproject.toml"

# ${NAME} or ${NAME:-default}; the default may be empty and may not contain "}".
_ENV_VAR_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# --- discovery -------------------------------------------------------------------------------


def _parse_toml_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfigError(
            f"Config file '{path}' is not valid TOML: {exc}. "
            "Hint: check the line and column named above for a missing quote, bracket or '='."
        ) from exc
    except OSError as exc:
        raise InvalidConfigError(
            f"Config file '{path}' could not be read: {exc}. Hint: check that the path exists and is a readable file."
        ) from exc


def _pyproject_section(data: Mapping[str, Any]) -> dict[str, Any] | None:
    tool = data.get("tool")
    if not isinstance(tool, Mapping):
        return None
    section = tool.get("metaxy")
    return dict(section) if isinstance(section, Mapping) else None


def _is_metaxy_pyproject(path: Path) -> bool:
    """A ``pyproject.toml`` counts as configuration only with a non-empty ``[tool.metaxy]``."""
    try:
        data = _parse_toml_file(path)
    except InvalidConfigError:
        # A broken pyproject.toml that may not even concern metaxy is not ours to report.
        return False
    return bool(_pyproject_section(data))


def find_config_file(start: Path | None = None, *, search_parents: bool = True) -> Path | None:
    """Find the configuration file that applies to a directory.

    In each directory, from ``start`` upward, ``metaxy.toml`` wins; otherwise ``pyproject.toml``
    is used only when it has a non-empty ``[tool.metaxy]`` table.

    Args:
        start: Directory to start from (default: the current working directory).
        search_parents: Also look in the parent directories, up to the filesystem root.

    Returns:
        The absolute path of the file found, or None.
    """
    directory = (start or Path.cwd()).resolve()
    if directory.is_file():
        directory = directory.parent
    candidates = [directory, *directory.parents] if search_parents else [directory]
    for candidate in candidates:
        metaxy_toml = candidate / CONFIG_FILE_NAME
        if metaxy_toml.is_file():
            return metaxy_toml
        pyproject = candidate / PYPROJECT_FILE_NAME
        if pyproject.is_file() and _is_metaxy_pyproject(pyproject):
            return pyproject
    return None


# --- reading ---------------------------------------------------------------------------------


def expand_env_vars(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of a nested structure.

    An unset variable without a default expands to the empty string; ``${VAR:-default}`` uses
    the default when the variable is unset or empty (as in a POSIX shell).

    Args:
        value: A string, or a dict / list containing strings at any depth.
        environ: Variables to use (default: ``os.environ``).

    Returns:
        A copy of ``value`` with the variables replaced. Dictionary keys are left as written.
    """
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        current = env.get(name)
        if default is not None and not current:
            return default
        return current or ""

    if isinstance(value, str):
        return _ENV_VAR_PATTERN.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: expand_env_vars(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env_vars(v, env) for v in value]
    return value


def merge_extended(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a child configuration over the configuration it extends.

    Scalars of the child replace the parent's, tables are merged one level deep (a child's
    ``[stores.dev]`` replaces the parent's ``[stores.dev]`` as a whole), arrays are concatenated
    (parent items first).

    Args:
        parent: The extended (base) configuration.
        child: The extending configuration.

    Returns:
        The merged configuration, a new dictionary.
    """
    merged: dict[str, Any] = dict(parent)
    for key, value in child.items():
        base = merged.get(key)
        if isinstance(base, Mapping) and isinstance(value, Mapping):
            merged[key] = {**base, **value}
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = [*base, *value]
        else:
            merged[key] = value
    return merged


def _config_section(path: Path) -> dict[str, Any]:
    data = _parse_toml_file(path)
    if path.name == PYPROJECT_FILE_NAME:
        return _pyproject_section(data) or {}
    return data


def read_config_file(path: Path, *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a configuration file, with variables expanded and ``extend`` resolved.

    For a ``pyproject.toml`` only the ``[tool.metaxy]`` table is read. ``extend`` paths are
    relative to the file containing them (absolute paths and ``~`` work too); chains are
    followed to the end.

    Args:
        path: The file to read.
        environ: Variables used for ``${VAR}`` expansion (default: ``os.environ``).

    Returns:
        The merged configuration dictionary. It keeps the ``extend`` value of ``path`` itself.

    Raises:
        InvalidConfigError: The file (or a file it extends) is missing or not valid TOML, an
            ``extend`` value is not a string, or the ``extend`` chain forms a cycle.
    """
    return _read_with_chain(Path(path).resolve(), [], environ)


def _read_with_chain(path: Path, chain: list[Path], environ: Mapping[str, str] | None) -> dict[str, Any]:
    if path in chain:
        cycle = " -> ".join(str(p) for p in [*chain[chain.index(path) :], path])
        raise InvalidConfigError(
            f"Circular config inheritance: {cycle}. "
            "Hint: remove the `extend` key from one of these files so the chain ends."
        )
    if not path.is_file():
        if chain:
            raise InvalidConfigError(
                f"Config file '{chain[-1]}' extends '{path}', which does not exist. "
                "Hint: `extend` paths are relative to the file that contains them."
            )
        raise InvalidConfigError(
            f"Config file '{path}' does not exist. "
            "Hint: check the path given (argument or METAXY_CONFIG), or leave it out to find "
            "metaxy.toml / pyproject.toml automatically."
        )
    data = expand_env_vars(_config_section(path), environ)
    parent_ref = data.get("extend")
    if parent_ref is None:
        return data
    if not isinstance(parent_ref, str) or not parent_ref:
        raise InvalidConfigError(
            f"Config file '{path}' has extend = {parent_ref!r}, which is not a file path. "
            'Hint: write extend = "../base.toml" (relative to this file) or an absolute path.'
        )
    parent_path = Path(parent_ref).expanduser()
    if not parent_path.is_absolute():
        parent_path = path.parent / parent_path
    parent = _read_with_chain(parent_path.resolve(), [*chain, path], environ)
    return merge_extended(parent, data)


# --- writing ---------------------------------------------------------------------------------


def _without_none(value: Any) -> Any:
    """``value`` with ``None`` dropped at every depth (TOML has no null) and keys as strings."""
    if isinstance(value, Mapping):
        return {str(k): _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value if v is not None]
    return value


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Render a dictionary as a TOML document (with ``tomli-w``).

    ``None`` values are dropped at every depth, since TOML has no null.

    Args:
        data: The document's top-level table.

    Returns:
        TOML text that ``tomllib.loads`` reads back to ``data`` (without its ``None`` values).

    Raises:
        TypeError: A value TOML cannot hold (e.g. an arbitrary object) was found.
    """
    return tomli_w.dumps(_without_none(data))
