#!/usr/bin/env python3
"""Large filters: thousands of OR-ed equalities or IN values, on every store.

A filter like ``sample_id = 'a' OR sample_id = 'b' OR ...`` (what a script building a filter from
a list of ids produces) must cost time linear in its number of terms. For each store and each
term count K this times ``store.read(feature, filters=...)`` collected, against two references
measured in the same run:

* ``unfiltered``: the same store's read of the whole feature (merge-on-read included): the
  filter should add little to it;
* ``bound``: the hand-written selection on the raw rows (Polars ``is_in`` on the in-memory frame).

and reports the growth exponent between the smallest and largest K (1.0 = linear; the old
left-deep expression tree grew quadratically: 4,000 terms took 85 s on the Polars stores).

Usage: ``python benchmarks/filters.py [--rows 100000] [--terms 1000,2000,4000,8000] [--rounds 3]
[--output benchmarks/RESULTS_filters.md]``
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "src"))

import polars as pl  # noqa: E402

import metaxy as mx  # noqa: E402


def _timed(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), out


def _stores(tmp: Path) -> dict[str, Any]:
    from metaxy.ext.duckdb import DuckDBMetadataStore

    stores: dict[str, Any] = {
        "memory": mx.InMemoryMetadataStore(),
        "duckdb": DuckDBMetadataStore(tmp / "filters.duckdb", auto_create_tables=True),
    }
    try:
        from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

        stores["delta"] = DeltaMetadataStore(tmp / "delta")
    except ImportError:  # the delta extra is not installed
        pass
    return stores


def run(rows: int, terms: list[int], rounds: int) -> list[dict[str, Any]]:
    graph = mx.FeatureGraph()
    results: list[dict[str, Any]] = []
    with graph.use(), tempfile.TemporaryDirectory() as tmp:

        class Sample(mx.BaseFeature, spec=mx.FeatureSpec(key="bench/sample", id_columns=["sample_id"])):
            sample_id: str

        ids = [f"s{i:07d}" for i in range(rows)]
        frame = pl.DataFrame({"sample_id": ids, "metaxy_provenance_by_field": [{"default": i} for i in ids]})
        for name, store in _stores(Path(tmp)).items():
            with store.open("w"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                store.write(Sample, frame)
            with store:
                unfiltered, _ = _timed(lambda s=store: s.read(Sample).collect(), rounds)
                for k in terms:
                    wanted = ids[:: max(1, rows // k)][:k]
                    for form in ("or", "in"):
                        if form == "or":
                            condition = " OR ".join(f"sample_id = '{i}'" for i in wanted)
                        else:
                            condition = "sample_id IN (" + ", ".join(f"'{i}'" for i in wanted) + ")"
                        ms, out = _timed(lambda s=store, c=condition: s.read(Sample, filters=c).collect(), rounds)
                        assert len(out) == len(wanted), (name, form, k, len(out))
                        bound, _ = _timed(lambda w=wanted: frame.filter(pl.col("sample_id").is_in(w)), rounds)
                        results.append(
                            {"store": name, "form": form, "terms": k, "ms": ms, "unfiltered_ms": unfiltered,
                             "bound_ms": bound}
                        )
                        print(f"{name:7} {form:3} {k:6} terms: {ms:9.1f} ms (unfiltered read {unfiltered:7.1f} ms)")
    return results


def growth(results: list[dict[str, Any]], store: str, form: str) -> float:
    cells = sorted((r["terms"], r["ms"]) for r in results if r["store"] == store and r["form"] == form)
    (k0, t0), (k1, t1) = cells[0], cells[-1]
    return math.log(t1 / t0) / math.log(k1 / k0) if k1 != k0 and t0 > 0 else float("nan")


def report(results: list[dict[str, Any]], rows: int, rounds: int) -> str:
    lines = [
        "# Large filters",
        "",
        f"`python benchmarks/filters.py --rows {rows} --rounds {rounds}`: median of {rounds} rounds, a feature of "
        f"{rows:,} samples; `ms` is `store.read(feature, filters=...).collect()`. Load average at the end: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (above the core count, timings are noisy).",
        "",
        "| store | form | terms | ms | unfiltered read ms | ratio to unfiltered | bound ms (Polars is_in) |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        lines.append(
            f"| {r['store']} | {r['form']} | {r['terms']:,} | {r['ms']:.1f} | {r['unfiltered_ms']:.1f} | "
            f"{r['ms'] / r['unfiltered_ms']:.2f} | {r['bound_ms']:.1f} |"
        )
    lines += ["", "Growth exponent of the filtered read from the fewest to the most terms (1.0 = linear):", ""]
    for store in dict.fromkeys(r["store"] for r in results):
        for form in ("or", "in"):
            lines.append(f"- {store}, {form}: {growth(results, store, form):.2f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--terms", default="1000,2000,4000,8000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args(argv)
    results = run(args.rows, [int(t) for t in args.terms.split(",")], args.rounds)
    text = report(results, args.rows, args.rounds)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
