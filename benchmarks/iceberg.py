"""The ``resolve_update`` benchmark (``run.py``) on the Iceberg store, beside the DuckDB bound.

Registers an ``iceberg`` store in ``run.STORES`` (a local warehouse with its SQLite catalog in each
round's temp dir) and runs ``run.py``'s benchmark with it; workers re-enter through this file.
Every figure is a ratio to ``lower_bound_duckdb.py`` timed in the same run; peak RSS per side.

    python benchmarks/iceberg.py --n 10000,100000,1000000        # -> benchmarks/RESULTS_iceberg.md
    python benchmarks/iceberg.py --quick --scenario simple
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # the benchmark module beside this file


def _iceberg_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore

    return IcebergMetadataStore(round_dir / "warehouse", hash_algorithm=hash_algorithm)


run.STORES["iceberg"] = _iceberg_store
_run_metaxy_command = run.metaxy_command


def _metaxy_command(cell: Any, opts: Any) -> list[str]:
    """``run.py``'s worker command, entering through this file (so the worker knows ``iceberg``)."""
    cmd = _run_metaxy_command(cell, opts)
    cmd[1] = str(Path(__file__).resolve())
    return cmd


run.metaxy_command = _metaxy_command


def main(argv: list[str]) -> int:
    if argv[:1] != [run.WORKER_FLAG]:
        argv = ["--store", "iceberg", "--output", str(run.BENCH_DIR / "RESULTS_iceberg.md"), *argv]
    return run.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
