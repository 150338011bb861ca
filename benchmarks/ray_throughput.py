#!/usr/bin/env python3
"""Rows per second through metaxy.ext.ray, as ratios to a single-process ``store.write`` timed in
the same run (the lower bound a distributed write must be compared with on one machine).

For each store (DuckDB: committer actor; Delta: parallel commits from the workers):

* ``store.write`` of all N rows in this process (the reference);
* ``write_metadata`` of the same rows as a Dataset of B blocks with 1 and with 2 concurrent write
  tasks (``concurrency``), Ray already started and its workers warm (one warm-up write first);
* ``read_feature`` of the N rows back (datasource read throughput), against ``store.read`` here.

Usage: ``python benchmarks/ray_throughput.py [--rows 1000000] [--blocks 8] [--stores duckdb,delta]``.
Prints a Markdown table; paste it into benchmarks/RESULTS_ray.md with the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

import metaxy as mx
from metaxy.models import constants as c


class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="bench/clip", id_columns=["sample_id"], fields=["audio"])):
    sample_id: str


def rows(n: int, tag: str) -> pl.DataFrame:
    return pl.DataFrame({"i": pl.arange(0, n, eager=True)}).select(
        (pl.lit(f"{tag}-") + pl.col("i").cast(pl.String).str.zfill(9)).alias("sample_id"),
        (pl.col("i") % 1000 / 1000).alias("score"),
        pl.struct((pl.lit("a") + pl.col("i").cast(pl.String)).alias("audio")).alias(c.PROVENANCE_BY_FIELD),
    )


def make_store(kind: str, root: Path) -> Any:
    if kind == "duckdb":
        from metaxy.ext.duckdb import DuckDBMetadataStore

        return DuckDBMetadataStore(str(root / "meta.duckdb"), auto_create_tables=True)
    from metaxy.metadata_store.delta import DeltaMetadataStore

    return DeltaMetadataStore(root / "delta", auto_create_tables=True)


def blocks(ray: Any, df: pl.DataFrame, n: int) -> Any:
    step = -(-df.height // n)
    return ray.data.from_arrow([df.slice(i * step, step).to_arrow() for i in range(n)])


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_store(ray: Any, kind: str, n: int, nblocks: int, tmp: Path) -> dict[str, float]:
    from metaxy.ext.ray import read_feature, write_metadata

    out: dict[str, float] = {}
    for label in ("single", "w1", "w2", "warm"):
        shutil.rmtree(tmp / label, ignore_errors=True)
        (tmp / label).mkdir(parents=True)
    # warm the workers (imports of metaxy/polars/the store driver) outside the timings
    write_metadata(blocks(ray, rows(1000, "warm"), 2), make_store(kind, tmp / "warm"), Clip, concurrency=2)

    store = make_store(kind, tmp / "single")
    df = rows(n, "s")

    def single() -> None:
        with store.open("w"):
            store.write(Clip, df)

    out["write_single"] = timed(single)
    for w in (1, 2):
        s = make_store(kind, tmp / f"w{w}")
        ds = blocks(ray, df, nblocks).materialize()  # the input in the object store before timing
        out[f"write_ray_{w}"] = timed(lambda s=s, ds=ds, w=w: write_metadata(ds, s, Clip, concurrency=w))
        with s.open("r"):
            assert s.read(Clip, columns=["sample_id"]).collect().shape[0] == n

    def read_single() -> None:
        with store.open("r"):
            assert store.read(Clip).collect().shape[0] == n

    def read_ray() -> None:
        assert read_feature(store, Clip, num_blocks=nblocks).count() == n

    out["read_single"] = timed(read_single)
    out["read_ray"] = timed(read_ray)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--stores", default="duckdb,delta")
    args = ap.parse_args()

    import ray

    tmp = Path(tempfile.mkdtemp(prefix="mxrb", dir="/tmp"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp / "ray"))
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        print(f"rows={args.rows} blocks={args.blocks} load={os.getloadavg()[0]:.1f} (1-min, at start)\n")
        print(
            "| store | single write s | Ray 1 worker s (ratio) | Ray 2 workers s (ratio) | rows/s single / 1w / 2w "
            "| read single s | Ray read s (ratio) |"
        )
        print("|---|---|---|---|---|---|---|")
        for kind in args.stores.split(","):
            r = bench_store(ray, kind, args.rows, args.blocks, tmp / kind)
            n = args.rows
            ws, w1, w2 = r["write_single"], r["write_ray_1"], r["write_ray_2"]
            print(
                f"| {kind} | {ws:.2f} | {w1:.2f} ({w1 / ws:.2f}x) | {w2:.2f} ({w2 / ws:.2f}x) "
                f"| {n / ws:,.0f} / {n / w1:,.0f} / {n / w2:,.0f} "
                f"| {r['read_single']:.2f} | {r['read_ray']:.2f} ({r['read_ray'] / r['read_single']:.2f}x) |",
                flush=True,
            )
        print(f"\nload at end: {os.getloadavg()[0]:.1f}")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
