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
    .venv/bin/python benchmarks/clickhouse.py 10000000 --rounds 1 --output /tmp/ch10m.md
"""

# ruff: noqa: B023  (the timed closures run inside the iteration that defines them)
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import polars as pl
import pyarrow.compute as pc

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


def _latest(table: str, version: str, columns: str) -> str:
    """The latest row per sample of one feature version, with metaxy's order and tie-breaks; sorted
    by ``sample_uid`` first, the tables' sorting key, so ClickHouse reads them in key order and
    sorts only each sample's rows (as metaxy's statement does)."""
    return (
        f"SELECT sample_uid, {columns} FROM \"{table}\" WHERE metaxy_feature_version = '{version}' "
        "ORDER BY sample_uid, coalesce(metaxy_deleted_at, metaxy_updated_at) DESC, "
        "metaxy_data_version DESC, metaxy_provenance DESC LIMIT 1 BY sample_uid"
    )


def _md5(text: str) -> str:
    return f"substring(lower(hex(MD5({text}))), 1, 8)"


def bound_sql(scenario: wl.Scenario, roots: list[tuple[str, str]], leaf: tuple[str, str] | None) -> str:
    """The hand-written statement, shaped as the reference bound (``lower_bound_duckdb.py``): each leaf
    field's hash over its upstream data versions and the row's hash over those (metaxy's strings,
    so the values equal metaxy's), then, with a stored leaf, one FULL OUTER JOIN with the stored
    rows' latest provenance that keeps the new, stale and orphaned rows, labelled by ``kind``.
    ``roots`` and ``leaf``: (table, feature version)."""
    parts = []
    for r, (table, version) in enumerate(roots):
        fields = ", ".join(
            f"tupleElement(metaxy_data_version_by_field, '{f}') AS r{r}_{f}" for f in scenario.root_fields
        )
        parts.append((f"u{r}", _latest(table, version, fields)))
    src = f"({parts[0][1]}) AS u0"
    for alias, sql in parts[1:]:
        src += f" INNER JOIN ({sql}) AS {alias} USING (sample_uid)"
    upstream = sorted(
        (f"{key}.{f}", f"r{r}_{f}") for r, key in enumerate(scenario.root_keys) for f in scenario.root_fields
    )
    values = ", ".join(f"'{name}', {value}" for name, value in upstream)
    fields = sorted(scenario.leaf_fields)
    per_field = ", ".join(
        _md5(f"concatWithSeparator('|', '{lf}', '{wl.CODE_VERSION}', {values})") + f" AS p_{lf}" for lf in fields
    )
    row = _md5(f"concatWithSeparator('|', {', '.join(f'p_{lf}' for lf in fields)})")
    expected = f"SELECT sample_uid, {per_field}, {row} AS provenance FROM {src}"
    if leaf is None:
        return expected
    stored = _latest(*leaf, "metaxy_provenance")
    pcols = ", ".join(f"e.p_{lf}" for lf in fields)
    return (
        f"SELECT if(c.sample_uid IS NULL, e.sample_uid, c.sample_uid) AS sample_uid, {pcols}, e.provenance, "
        "multiIf(c.sample_uid IS NULL, 'new', e.sample_uid IS NULL, 'orphaned', 'stale') AS kind "
        f"FROM ({expected}) AS e FULL OUTER JOIN ({stored}) AS c ON e.sample_uid = c.sample_uid "
        "WHERE c.sample_uid IS NULL OR e.sample_uid IS NULL OR e.provenance != c.metaxy_provenance "
        "SETTINGS join_use_nulls = 1"
    )


def _check_same_values(metaxy_new: pl.DataFrame, bound_new: pl.DataFrame) -> None:
    """The bound computes metaxy's provenance (same strings, same hash), checked once per cell."""
    mine = metaxy_new.select("sample_uid", provenance="metaxy_provenance").sort("sample_uid")
    theirs = bound_new.select("sample_uid", "provenance").sort("sample_uid")
    assert mine.equals(theirs), "the bound's provenance differs from metaxy's"


def run(ns: list[int], rounds: int, scenarios: list[str], phases: list[str]) -> list[str]:
    warnings.simplefilter("ignore")
    engine = tempfile.mkdtemp(prefix="metaxy_ch_bench_")
    rows = []
    for n in ns:
        for name in scenarios:
            scenario = wl.SCENARIOS[name]
            feats = wl.define_features(scenario)
            with feats.graph.use():
                store = ClickHouseMetadataStore(f"chdb://{engine}?database=b_{name}_{n}", auto_create_tables=True)
                with store.open("w"):
                    for i, frame in wl.iter_root_frames(scenario, n):
                        store.write(feats.roots[i], frame)
                    roots = [(store._table(r.spec().key), r.feature_version()) for r in feats.roots]
                    leaf_table = (store._table(feats.leaf.spec().key), feats.leaf.feature_version())
                    tr = store.transport
                    for phase in phases:
                        want_new, want_stale = wl.expected_counts(n, phase)
                        if phase == "stale":
                            inc = store.resolve_update(feats.leaf, versioning_engine="native").to_polars()
                            _check_same_values(inc.new, pl.from_arrow(tr.query_arrow(bound_sql(scenario, roots, None))))
                            store.write(feats.leaf, inc.new)
                            store.write(feats.roots[0], wl.root_frame(scenario, 0, n, bumped=True))
                        sql = bound_sql(scenario, roots, leaf_table if phase == "stale" else None)

                        def metaxy_run() -> None:
                            inc = store.resolve_update(feats.leaf, versioning_engine="native").to_polars()
                            assert (inc.new.height, inc.stale.height) == (want_new, want_stale)

                        def bound_run() -> None:
                            got = tr.query_arrow(sql)
                            if phase == "new":
                                counts = (got.num_rows, 0)
                            else:  # split by kind, as the reference bound does
                                kind = got.column("kind")
                                split = {k: got.filter(pc.equal(kind, k)) for k in ("new", "stale", "orphaned")}
                                counts = (split["new"].num_rows, split["stale"].num_rows)
                            assert counts == (want_new, want_stale), counts

                        metaxy_run(), bound_run()  # warm
                        m, b = median_times([metaxy_run, bound_run], rounds)
                        rows.append(
                            f"| {name} | {n:,} | {phase} | {m * 1000:,.1f} | {b * 1000:,.1f} | {m / b:.2f} | "
                            f"{'pass' if m / b <= 1.5 else 'FAIL'} |"
                        )
                        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scenario", default="simple,wide")
    ap.add_argument("--phase", default=",".join(wl.PHASES))
    ap.add_argument("--output", type=Path, default=Path(__file__).with_name("RESULTS_clickhouse.md"))
    args = ap.parse_args()
    load = os.getloadavg()[0]
    started = time.time()
    rows = run(args.n, args.rounds, args.scenario.split(","), args.phase.split(","))
    header = [
        "| graph | N | phase | metaxy median ms | bound median ms | ratio | target ≤ 1.5 |",
        "|:--|--:|:--|--:|--:|--:|:--|",
    ]
    text = "\n".join(header + rows)
    args.output.write_text(
        "# ClickHouse (chdb) resolve_update benchmark\n\n"
        f"- **date**: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        f"- **engine**: chdb {__import__('chdb').__version__} (embedded ClickHouse), one data directory\n"
        f"- **1-min load average**: {load:.2f} before the run, {os.getloadavg()[0]:.2f} after\n"
        f"- **wall time**: {time.time() - started:.0f} s; median of {args.rounds} rounds after one warm-up, "
        "metaxy and the bound alternating in each round\n\n" + text + "\n"
    )
    print(text)


if __name__ == "__main__":
    main()
