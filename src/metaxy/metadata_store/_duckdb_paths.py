"""Checks on a DuckDB database path before DuckDB opens it."""

from __future__ import annotations

from pathlib import Path

from metaxy.errors import BackendError

#: DuckDB database files carry this magic at byte offset 8.
_DUCKDB_MAGIC = b"DUCK"


def check_database_path(database: str) -> None:
    """Refuse a path that is not (or cannot become) a DuckDB database file, before DuckDB sees it:
    DuckDB would attach a CSV / Parquet / text file as a read-only view and writes would vanish.

    Raises:
        BackendError: naming the path and what it is.
    """
    path = Path(database)
    hint = "Hint: point `database` at a DuckDB file (e.g. metadata.duckdb) or a path where one can be created."
    if path.is_dir():
        raise BackendError(f"DuckDB database path '{database}' is a directory. {hint}")
    if path.exists():
        try:
            with path.open("rb") as fh:
                head = fh.read(12)
        except OSError as exc:
            raise BackendError(f"Cannot read DuckDB database file '{database}': {exc}. {hint}") from exc
        if head[8:12] != _DUCKDB_MAGIC:
            what = "an empty file" if not head else f"not a DuckDB database (starts with {head[:8]!r})"
            raise BackendError(f"DuckDB database path '{database}' exists but is {what}. {hint}")
        return
    parent = path.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise BackendError(
                    f"Cannot create DuckDB database '{database}': '{ancestor}' is a file, not a directory. {hint}"
                )
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendError(f"Cannot create the directory of DuckDB database '{database}': {exc}. {hint}") from exc
