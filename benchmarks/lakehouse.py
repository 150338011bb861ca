"""The ``resolve_update`` benchmark (``run.py``) on the lakehouse stores, beside the DuckDB bound.

Registers these stores in ``run.STORES`` and runs ``run.py``'s benchmark on each one given
(workers re-enter through this file, so they know the names):

* ``delta`` (``run.py``'s own): a Delta Lake root on the local disk;
* ``delta_s3``: the same on S3;
* ``iceberg``: a local warehouse with its SQLite catalog;
* ``iceberg_s3``: the warehouse on S3, the SQLite catalog on the local disk;
* ``lancedb``, ``lancedb_s3``: a Lance database on the local disk / on S3.

The ``*_s3`` stores write to moto's S3 server (``metaxy.testing.s3``), which the parent starts on
127.0.0.1 for the run and passes to the workers through ``METAXY_BENCH_S3_ENDPOINT``; every round
uses a fresh prefix. moto is a Python server that answers one request at a time, so the S3 rows
measure the store over a slow object store, not S3's own speed.

Every figure is a ratio to ``lower_bound_duckdb.py`` timed in the same run; peak RSS per side.
Each store's report goes to ``RESULTS_<store>.md`` in ``benchmarks/`` (or ``--output-dir``); the
other options are ``run.py``'s.

    python benchmarks/lakehouse.py --stores delta,delta_s3,iceberg,lancedb --n 10000,100000,1000000
    python benchmarks/lakehouse.py --stores lancedb --quick --scenario simple
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # the benchmark module beside this file

S3_ENV = "METAXY_BENCH_S3_ENDPOINT"
BUCKET = "metaxy-bench"


def _s3_server() -> Any:
    """The S3 server the parent started (its endpoint from the environment)."""
    from metaxy.testing.s3 import S3Server

    endpoint = os.environ.get(S3_ENV)
    if not endpoint:
        raise RuntimeError(f"{S3_ENV} is not set: run the *_s3 stores through benchmarks/lakehouse.py")
    return S3Server(endpoint=endpoint, bucket=BUCKET)


def _round_url(round_dir: Path) -> str:
    """One S3 prefix per round directory (seeding and the timed resolve share it)."""
    marker = round_dir / "s3-prefix"
    if not marker.exists():
        marker.write_text(uuid.uuid4().hex)
    return str(_s3_server().url(marker.read_text()))


def _delta_s3_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    server = _s3_server()
    return DeltaMetadataStore(
        _round_url(round_dir), storage_options=server.storage_options, hash_algorithm=hash_algorithm
    )


def _iceberg_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore

    return IcebergMetadataStore(round_dir / "warehouse", hash_algorithm=hash_algorithm)


def _iceberg_s3_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore

    props = _s3_server().iceberg_catalog_properties(round_dir)
    return IcebergMetadataStore(_round_url(round_dir), catalog_properties=props, hash_algorithm=hash_algorithm)


def _lancedb_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.lancedb import LanceDBMetadataStore

    return LanceDBMetadataStore(round_dir / "lance", hash_algorithm=hash_algorithm)


def _lancedb_s3_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.lancedb import LanceDBMetadataStore

    server = _s3_server()
    return LanceDBMetadataStore(
        _round_url(round_dir), storage_options=server.lance_storage_options, hash_algorithm=hash_algorithm
    )


run.STORES.update(
    delta_s3=_delta_s3_store,
    iceberg=_iceberg_store,
    iceberg_s3=_iceberg_s3_store,
    lancedb=_lancedb_store,
    lancedb_s3=_lancedb_s3_store,
)
LAKEHOUSE = ("delta", "delta_s3", "iceberg", "iceberg_s3", "lancedb", "lancedb_s3")
_run_metaxy_command = run.metaxy_command


def _metaxy_command(cell: Any, opts: Any) -> list[str]:
    """``run.py``'s worker command, entering through this file (so the worker knows the stores)."""
    cmd = _run_metaxy_command(cell, opts)
    cmd[1] = str(Path(__file__).resolve())
    return cmd


run.metaxy_command = _metaxy_command


@contextlib.contextmanager
def _s3_for(stores: list[str]) -> Iterator[None]:
    """Start moto's S3 server when a ``*_s3`` store is asked for; its endpoint goes to the workers."""
    if not any(s.endswith("_s3") for s in stores):
        yield
        return
    from metaxy.testing.s3 import moto_s3_server

    with moto_s3_server(BUCKET) as server:
        os.environ[S3_ENV] = server.endpoint
        try:
            yield
        finally:
            os.environ.pop(S3_ENV, None)


def main(argv: list[str]) -> int:
    if argv[:1] == [run.WORKER_FLAG]:
        return run.main(argv)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    p.add_argument("--stores", type=lambda v: run._csv(v, LAKEHOUSE), default=list(LAKEHOUSE))
    p.add_argument("--output-dir", type=Path, default=run.BENCH_DIR)
    ours, argv = p.parse_known_args(argv)
    if "--output" in argv:
        p.error("--output names one file; the stores write RESULTS_<store>.md into --output-dir")
    stores, out_dir = ours.stores, ours.output_dir
    code = 0
    with _s3_for(stores):
        for store in stores:
            print(f"== {store}", flush=True)
            output = str(out_dir / f"RESULTS_{store}.md")
            code = max(code, run.main(["--store", store, "--output", output, *argv]))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
