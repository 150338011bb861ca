"""Finding, reading and writing configuration files.

Everything here works on plain dictionaries; validation happens in ``MetaxyConfig``.

- :func:`find_config_file` walks directories upward looking for ``metaxy.toml`` or a
  ``pyproject.toml`` with a non-empty ``[tool.metaxy]`` table.
- :func:`read_config_file` parses one file, expands ``${VAR}`` / ``${VAR:-default}`` in every
  string and resolves the ``extend`` chain.
- :func:`dumps_toml` renders a dictionary as TOML (the standard library only reads TOML).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _quote(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _quote(key)  # fullmatch: `$` would accept a final "\n"


def _inline(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(str(k))} = {_inline(v)}" for k, v in value.items() if v is not None)
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value if v is not None) + "]"
    raise TypeError(f"Cannot write {type(value).__name__} value {value!r} to TOML.")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _emit_table(lines: list[str], path: list[str], table: Mapping[str, Any], *, header: str | None) -> None:
    scalars = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, Mapping)]
    scalars = [(k, v) for k, v in scalars if not _is_table_array(v)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
    if header is not None and (scalars or not (tables or arrays)):
        lines.extend(["", header] if lines else [header])
    lines.extend(f"{_key(str(k))} = {_inline(v)}" for k, v in scalars)
    for k, sub in tables:
        sub_path = [*path, _key(str(k))]
        _emit_table(lines, sub_path, sub, header=f"[{'.'.join(sub_path)}]")
    for k, items in arrays:
        sub_path = [*path, _key(str(k))]
        for item in items:
            lines.extend(["", f"[[{'.'.join(sub_path)}]]"] if lines else [f"[[{'.'.join(sub_path)}]]"])
            _emit_table(lines, sub_path, item, header=None)


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Render a dictionary as a TOML document.

    Supports what configuration holds: strings, booleans, integers, floats, lists, nested
    tables and arrays of tables. ``None`` values are dropped at every depth.

    Args:
        data: The document's top-level table.

    Returns:
        TOML text that ``tomllib.loads`` reads back to ``data`` (without its ``None`` values).

    Raises:
        TypeError: A value of another type (e.g. a date or an arbitrary object) was found.
    """
    lines: list[str] = []
    _emit_table(lines, [], data, header=None)
    return "\n".join(lines) + "\n" if lines else ""
