"""ClickHouse ``resolve_update`` benchmark on the embedded engine (chdb): metaxy's one-statement
native resolve vs a hand-written single-statement ClickHouse bound on the same engine and tables,
timed in the same run; results as ratios.

Workload: ``workload.py`` (the DuckDB benchmark's graphs and data): ``simple`` (one root, two
fields, one leaf field) and ``wide`` (two roots of four fields, two leaf fields); phase ``new``
(nothing of the leaf stored) and ``stale`` (the leaf stored, then root 0 re-written with some
``audio`` values bumped).

The bound does the same work as metaxy with no generality: latest row per sample of every root
(``LIMIT 1 BY``), the md5 of each leaf field's upstream data versions and of the row, in the stale
phase a join with the stored leaf's latest rows keeping the changed ones, and the result as Arrow
into Polars.

    nice -n 10 .venv/bin/python benchmarks/clickhouse.py 10000 100000 1000000
"""

# ruff: noqa: B023  (the timed closures run inside the iteration that defines them)
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))

import workload as wl

from metaxy.ext.clickhouse import ClickHouseMetadataStore


def median_times(fns, rounds: int) -> list[float]:
    """Median time of each function, the functions alternating within each round (so both sides
    see the same machine load)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def _latest(table: str, columns: str) -> str:
    """The latest row per sample with metaxy's semantics (the same order and tie-breaks as the
    Polars reference; soft-deleted latest rows hidden)."""
    return (
        f'SELECT sample_uid, {columns} FROM "{table}" ORDER BY coalesce(metaxy_deleted_at, metaxy_updated_at) DESC, '
        "metaxy_data_version DESC, metaxy_provenance DESC LIMIT 1 BY sample_uid"
    )


def bound_sql(scenario: wl.Scenario, tables: list[str], leaf: str | None) -> str:
    """The hand-written statement: one md5 per leaf field over all upstream fields, one per row."""
    parts = []
    for r, table in enumerate(tables):
        fields = ", ".join(
            f"tupleElement(metaxy_data_version_by_field, '{f}') AS r{r}_{f}" for f in scenario.root_fields
        )
        parts.append((f"u{r}", _latest(table, fields)))
    src = f"({parts[0][1]}) AS u0"
    for alias, sql in parts[1:]:
        src += f" INNER JOIN ({sql}) AS {alias} USING (sample_uid)"
    values = ", ".join(f"r{r}_{f}" for r in range(len(tables)) for f in scenario.root_fields)
    field_hashes = [
        f"lower(hex(MD5(concat('{lf}', '|', concatWithSeparator('|', {values})))))" for lf in scenario.leaf_fields
    ]
    row = f"lower(hex(MD5(concatWithSeparator('|', {', '.join(field_hashes)}))))"
    expected = f"SELECT sample_uid, {row} AS p FROM {src}"
    if leaf is None:
        return expected
    stored = _latest(leaf, "metaxy_provenance")
    return (
        f"SELECT e.sample_uid AS sample_uid, e.p AS p FROM ({expected}) AS e INNER JOIN ({stored}) AS s "
        "USING (sample_uid) WHERE s.metaxy_provenance != e.p"
    )


def run(ns: list[int], rounds: int) -> list[str]:
    warnings.simplefilter("ignore")
    engine = tempfile.mkdtemp(prefix="metaxy_ch_bench_")
    rows = []
    for n in ns:
        for name, scenario in wl.SCENARIOS.items():
            feats = wl.define_features(scenario)
            with feats.graph.use():
                store = ClickHouseMetadataStore(f"chdb://{engine}?database=b_{name}_{n}", auto_create_tables=True)
                with store.open("w"):
                    for i, frame in wl.iter_root_frames(scenario, n):
                        store.write(feats.roots[i], frame)
                    tables = [store._table(r.spec().key) for r in feats.roots]
                    tr = store.transport
                    for phase in wl.PHASES:
                        want_new, want_stale = wl.expected_counts(n, phase)
                        leaf = None
                        if phase == "stale":
                            inc = store.resolve_update(feats.leaf, versioning_engine="native").to_polars()
                            store.write(feats.leaf, inc.new)
                            # the bound's own stored leaf (its hashes), the same rows and key order
                            leaf = "bound_leaf"
                            tr.command(f'DROP TABLE IF EXISTS "{leaf}"')
                            tr.command(
                                f'CREATE TABLE "{leaf}" ENGINE = MergeTree ORDER BY sample_uid '
                                "SETTINGS allow_nullable_key = 1 AS SELECT sample_uid, "
                                "p AS metaxy_provenance, p AS metaxy_data_version, now64(6) AS metaxy_updated_at, "
                                "CAST(NULL AS Nullable(DateTime64(6))) AS metaxy_deleted_at "
                                f"FROM ({bound_sql(scenario, tables, None)})"
                            )
                            store.write(feats.roots[0], wl.root_frame(scenario, 0, n, bumped=True))
                        sql = bound_sql(scenario, tables, leaf)

                        def metaxy_run() -> None:
                            inc = store.resolve_update(feats.leaf, versioning_engine="native").to_polars()
                            assert (inc.new.height, inc.stale.height) == (want_new, want_stale)

                        def bound_run() -> None:
                            got = pl.from_arrow(tr.query_arrow(sql))
                            assert got.height == (want_new if phase == "new" else want_stale), got.height

                        metaxy_run(), bound_run()  # warm
                        m, b = median_times([metaxy_run, bound_run], rounds)
                        rows.append(
                            f"| {name} | {n:,} | {phase} | {m * 1000:,.1f} | {b * 1000:,.1f} | {m / b:.2f} | "
                            f"{'pass' if m / b <= 1.5 else 'FAIL'} |"
                        )
                        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    ns = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    load = os.getloadavg()[0]
    started = time.time()
    rows = run(ns, rounds=5)
    header = [
        "| graph | N | phase | metaxy median ms | bound median ms | ratio | target ≤ 1.5 |",
        "|:--|--:|:--|--:|--:|--:|:--|",
    ]
    text = "\n".join(header + rows)
    out = Path(__file__).with_name("RESULTS_clickhouse.md")
    out.write_text(
        "# ClickHouse (chdb) resolve_update benchmark\n\n"
        f"- **date**: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        f"- **engine**: chdb {__import__('chdb').__version__} (embedded ClickHouse), one data directory\n"
        f"- **1-min load average**: {load:.2f} before the run, {os.getloadavg()[0]:.2f} after\n"
        f"- **wall time**: {time.time() - started:.0f} s; median of 5 rounds after one warm-up, "
        "metaxy and the bound alternating in each round\n\n" + text + "\n"
    )
    print(text)
