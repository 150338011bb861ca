#!/usr/bin/env python3
"""Run the unmodified ``lower_bound_duckdb.py`` in this process (child of ``run.py``).

Kept free of polars / metaxy imports so the peak RSS the parent reads for this process is
the bound's own (plus the interpreter).  Usage: ``bound_worker.py <lower_bound_duckdb args>``.

Two adjustments, neither touching the timed SQL work:

* duckdb >= 2 refuses new work on a connection whose last ``execute()`` result was not
  fetched to its end; the bound reads its one-row "has leaf table" query with
  ``fetchone()`` and then queries again, which raises.  :func:`finish_fetchone_results`
  wraps ``duckdb.connect`` so that ``fetchone()`` on an ``execute()`` result also finishes
  the result (one extra, empty fetch).
* pyarrow's compute kernels initialise lazily on first use (~0.9 s on this machine); the
  bound splits its stale increment with ``pyarrow.compute.equal`` inside the timed block.
  :func:`warm_pyarrow_compute` pays that once up front when a stale phase will run.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def bound_dir() -> Path:
    """Directory holding ``lower_bound_duckdb.py``: this folder (env ``METAXY_BENCH_DIR`` overrides)."""
    override = os.environ.get("METAXY_BENCH_DIR")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent


def bound_script() -> Path:
    return bound_dir() / "lower_bound_duckdb.py"


def needs_fetch_shim(duckdb_version: str) -> bool:
    major = duckdb_version.split(".")[0]
    return major.isdigit() and int(major) >= 2


def finish_fetchone_results() -> None:
    """Wrap ``duckdb.connect`` so ``execute(...).fetchone()`` leaves no unfinished result."""
    import duckdb

    real_connect = duckdb.connect

    class _Result:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def fetchone(self) -> Any:
            row = self._cursor.fetchone()
            self._cursor.fetchall()
            return row

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

    class _Connection:
        def __init__(self, con: Any) -> None:
            self._con = con

        def execute(self, *args: Any, **kwargs: Any) -> _Result:
            return _Result(self._con.execute(*args, **kwargs))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

    def connect(*args: Any, **kwargs: Any) -> _Connection:
        return _Connection(real_connect(*args, **kwargs))

    duckdb.connect = connect  # type: ignore[assignment]


def warm_pyarrow_compute() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    pc.equal(pa.array(["new"]), "new")


def _runs_stale(argv: Sequence[str]) -> bool:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--phases", default="new,stale")  # the bound's own default
    known, _ = p.parse_known_args(argv)
    return "stale" in known.phases.split(",")


def main(argv: Sequence[str]) -> int:
    import duckdb

    script = bound_script()
    if needs_fetch_shim(duckdb.__version__):
        finish_fetchone_results()
    if _runs_stale(argv):
        warm_pyarrow_compute()
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
