"""PostgreSQL ``resolve_update`` benchmark on the shared workload (``benchmarks/workload.py``).

For each graph (``simple``, ``wide``), N and phase (``new``: nothing of the leaf stored; ``stale``:
the leaf stored, then root 0 appended with ~10% of ``audio`` bumped) three ways of computing the
increment are timed in the same run, on the same tables of one throw-away cluster
(``metaxy.testing.postgres_cluster``), best of ``--rounds``:

* **metaxy**: ``store.resolve_update(leaf)`` (the store's one-statement native resolve);
* **bound**: a hand-written single PostgreSQL statement doing what the resolve must do: the latest
  row per sample of every root (``DISTINCT ON``), their join, the per-field md5 provenance
  (``field|code_version|root.field|value|...``, cut to 8 characters) and the row provenance, the
  comparison with the latest stored leaf rows (stale phase), returned to the client through
  ``COPY ... TO STDOUT`` (CSV) into a Polars frame with the per-field struct built client-side;
* **Polars approach**: ``store.resolve_update(leaf, versioning_engine="polars")``: the upstream
  (and stored leaf) rows are read into Polars and the increment computed there.

The bound's provenance is checked equal to metaxy's (a wrong bound would make the ratio a lie).

    .venv/bin/python benchmarks/postgresql.py --n 10000,100000,1000000 --rounds 3
"""

# ruff: noqa: B023  (the timed closures run inside the iteration that defines them)
from __future__ import annotations

import argparse
import io
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload as wl


def best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def bound_sql(store: object, feats: wl.BenchFeatures, scenario: wl.Scenario, phase: str) -> tuple[str, list[str]]:
    """The hand-written statement and its output columns (``sample_uid``, one hash per leaf field,
    ``provenance``)."""
    tables = [store._table(r.spec().key) for r in feats.roots]  # type: ignore[attr-defined]
    versions = [r.feature_version() for r in feats.roots]
    latest = [
        f"r{i} AS (SELECT DISTINCT ON (sample_uid) sample_uid, metaxy_data_version_by_field AS v "
        f"FROM {_q(t)} WHERE metaxy_feature_version = '{v}' ORDER BY sample_uid, metaxy_updated_at DESC)"
        for i, (t, v) in enumerate(zip(tables, versions, strict=True))
    ]
    joined = "r0" + "".join(f" JOIN r{i} USING (sample_uid)" for i in range(1, len(tables)))
    parts = sorted(
        (f"{key}.{field}", f"r{i}.v ->> '{field}'")
        for i, key in enumerate(scenario.root_keys)
        for field in scenario.root_fields
    )
    upstream = ", ".join(f"'{name}', {value}" for name, value in parts)
    fields = sorted(scenario.leaf_fields)
    hashes = ", ".join(
        f"substring(md5(concat_ws('|', '{f}', '{wl.CODE_VERSION}', {upstream})) FROM 1 FOR 8) AS h_{f}" for f in fields
    )
    prov = "substring(md5(concat_ws('|', " + ", ".join(f"h_{f}" for f in fields) + ")) FROM 1 FOR 8) AS provenance"
    expected = f"SELECT sample_uid, {hashes} FROM {joined} OFFSET 0"
    cols = ["sample_uid", *(f"h_{f}" for f in fields), "provenance"]
    body = f"SELECT {', '.join(cols[:-1])}, {prov} FROM ({expected}) AS e"
    if phase == "new":
        sql = "WITH " + ", ".join(latest) + " " + body
    else:
        leaf = store._table(feats.leaf.spec().key)  # type: ignore[attr-defined]
        stored = (
            f"s AS (SELECT DISTINCT ON (sample_uid) sample_uid, metaxy_provenance AS p FROM {_q(leaf)} "
            f"WHERE metaxy_feature_version = '{feats.leaf.feature_version()}' "
            "ORDER BY sample_uid, metaxy_updated_at DESC)"
        )
        sql = (
            "WITH " + ", ".join([*latest, stored]) + f", x AS ({body}) "
            f"SELECT {', '.join('x.' + c for c in cols)} FROM x LEFT JOIN s USING (sample_uid) "
            "WHERE s.p IS DISTINCT FROM x.provenance"
        )
    return sql, cols


def run_bound(conn: object, sql: str, cols: list[str], fields: list[str]) -> pl.DataFrame:
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:  # type: ignore[attr-defined]
        for block in copy:
            buf.write(block)
    schema = {"sample_uid": pl.UInt64(), **{c: pl.String() for c in cols[1:]}}
    df = pl.read_csv(buf.getvalue(), has_header=False, new_columns=cols, schema_overrides=schema)
    return df.select(
        "sample_uid",
        pl.struct(*(pl.col(f"h_{f}").alias(f) for f in fields)).alias(wl.PROVENANCE_BY_FIELD),
        pl.col("provenance").alias("metaxy_provenance"),
    )


def run_cell(cluster: object, scenario: wl.Scenario, n: int, rounds: int) -> list[dict[str, object]]:
    from metaxy.ext.postgresql import PostgreSQLMetadataStore

    feats = wl.define_features(scenario)
    out = []
    url = cluster.create_database(f"bench_{scenario.name}_{n}")  # type: ignore[attr-defined]
    with feats.graph.use(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = PostgreSQLMetadataStore(url, auto_create_tables=True)
        with store.open("w"):
            for root_index, frame in wl.iter_root_frames(scenario, n):
                store.write(feats.roots[root_index], frame)
            for phase in wl.PHASES:
                if phase == "stale":
                    store.write(feats.leaf, store.resolve_update(feats.leaf).new)
                    store.write(feats.roots[0], wl.root_frame(scenario, 0, n, bumped=True))
                store.conn.execute("VACUUM ANALYZE")
                expected = wl.expected_counts(n, phase)
                kind = "new" if phase == "new" else "stale"
                sql, cols = bound_sql(store, feats, scenario, phase)
                fields = sorted(scenario.leaf_fields)

                def metaxy_run(engine: str = "native") -> pl.DataFrame:
                    inc = store.resolve_update(feats.leaf, versioning_engine=engine).to_polars()
                    assert (inc.new.height, inc.stale.height) == expected, (inc.new.height, inc.stale.height)
                    return getattr(inc, kind)

                def bound_run() -> pl.DataFrame:
                    df = run_bound(store.conn, sql, cols, fields)
                    assert df.height == sum(expected)
                    return df

                got = metaxy_run().select("sample_uid", "metaxy_provenance").sort("sample_uid")
                ref = bound_run().select("sample_uid", "metaxy_provenance").sort("sample_uid")
                assert got.equals(ref), "the bound computes other provenances than metaxy"
                m = best(metaxy_run, rounds)
                b = best(bound_run, rounds)
                p = best(lambda: metaxy_run("polars"), rounds)
                row = {"scenario": scenario.name, "n": n, "phase": phase, "metaxy": m, "bound": b, "polars": p}
                print(row, file=sys.stderr, flush=True)
                out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="10000,100000", help="comma-separated sample counts")
    ap.add_argument("--scenarios", default="simple,wide")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS_postgresql.md"))
    a = ap.parse_args(argv)
    from metaxy.testing.postgres_cluster import PostgresCluster

    cluster = PostgresCluster.start()
    rows: list[dict[str, object]] = []
    try:
        for name in a.scenarios.split(","):
            for n in (int(x) for x in a.n.split(",")):
                rows += run_cell(cluster, wl.SCENARIOS[name], n, a.rounds)
    finally:
        cluster.stop()
    lines = [
        "| graph | N | phase | metaxy (s) | bound (s) | Polars approach (s) | metaxy / bound | metaxy / Polars |",
        "|---|--:|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        m, b, p = float(r["metaxy"]), float(r["bound"]), float(r["polars"])  # type: ignore[arg-type]
        lines.append(
            f"| {r['scenario']} | {r['n']:,} | {r['phase']} | {m:.3f} | {b:.3f} | {p:.3f} | {m / b:.2f} | {m / p:.2f} |"
        )
    table = "\n".join(lines)
    load = os.getloadavg()[0]
    a.out.write_text(
        "# PostgreSQL resolve_update benchmark\n\n"
        f"`python benchmarks/postgresql.py --n {a.n} --rounds {a.rounds}`: best of {a.rounds}, same run, one "
        f"throw-away local cluster (default settings), 1-min load average at the end {load:.2f}. Bound = one "
        "hand-written SQL statement (see the module docstring); Polars approach = "
        "`resolve_update(..., versioning_engine='polars')`.\n\n" + table + "\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
