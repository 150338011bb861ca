"""PostgreSQL ``resolve_update`` benchmark: metaxy's one-statement native resolve vs a hand-written
single-statement PostgreSQL lower bound and vs the Polars approach (read the upstream table into
Polars, compute there), timed in the same run on a throw-away cluster; results as ratios.

Workload (simplified from workload.py): one root feature with field ``audio`` holding N samples and
a child feature with field ``text`` depending on it; nothing of the child stored (every sample new).

    .venv/bin/python benchmarks/postgresql.py 10000 100000
"""

# ruff: noqa: B023  (the timed closures run inside the iteration that defines them)
from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import polars as pl

import metaxy as mx
from metaxy.ext.postgresql import PostgreSQLMetadataStore
from metaxy.testing.postgres_cluster import PostgresCluster


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(ns: list[int]) -> str:
    cluster = PostgresCluster.start()
    rows = [
        "| N | metaxy (s) | bound (s) | Polars approach (s) | metaxy / bound | metaxy / Polars |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    try:
        for n in ns:
            with mx.FeatureGraph().use():

                class Root(mx.BaseFeature, spec=mx.FeatureSpec(key="bench/root", id_columns=["sid"], fields=["audio"])):
                    sid: str

                class Child(
                    mx.BaseFeature,
                    spec=mx.FeatureSpec(key="bench/child", id_columns=["sid"], deps=[Root], fields=["text"]),
                ):
                    sid: str

                url = cluster.create_database(f"bench_{n}")
                store = PostgreSQLMetadataStore(url, auto_create_tables=True)
                ids = [f"s{i}" for i in range(n)]
                frame = pl.DataFrame(
                    {"sid": ids, "metaxy_provenance_by_field": [{"audio": f"a{i % 1000003}"} for i in range(n)]}
                )
                with store.open("w"):
                    store.write(Root, frame)
                    conn = store.conn
                    conn.execute("VACUUM ANALYZE")
                    table = store._table(Root.spec().key)

                    def metaxy_run() -> None:
                        inc = store.resolve_update(Child, versioning_engine="native").to_polars()
                        assert inc.new.height == n

                    bound_sql = (
                        f"COPY (SELECT sid, md5(md5(metaxy_data_version_by_field ->> 'audio')) AS p FROM \"{table}\") "
                        "TO STDOUT WITH (FORMAT csv)"
                    )

                    def bound_run() -> None:
                        buf = io.BytesIO()
                        with conn.cursor() as cur, cur.copy(bound_sql) as cp:
                            for block in cp:
                                buf.write(block)
                        assert pl.read_csv(buf.getvalue(), has_header=False).height == n

                    def polars_run() -> None:
                        df = store.read(Root).collect().to_polars()
                        out = df.select(
                            "sid",
                            pl.col("metaxy_data_version_by_field").struct.field("audio").hash().alias("p"),
                        )
                        assert out.height == n

                    m, b, p = best(metaxy_run), best(bound_run), best(polars_run)
                rows.append(f"| {n:,} | {m:.3f} | {b:.3f} | {p:.3f} | {m / b:.2f} | {m / p:.2f} |")
                print(rows[-1], flush=True)
    finally:
        cluster.stop()
    return "\n".join(rows)


if __name__ == "__main__":
    table = main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
    out = Path(__file__).with_name("RESULTS_postgresql.md")
    out.write_text(
        "# PostgreSQL resolve_update benchmark\n\nBest of 3, same run, throw-away local cluster.\n\n" + table + "\n"
    )
    print(table)
