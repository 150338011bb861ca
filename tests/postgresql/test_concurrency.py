"""Many writers on one PostgreSQL database: 4 processes x 50 writes, every row counted (PostgreSQL's
own locking, no global lock); a server stopped mid-run gives a typed error and loses nothing acknowledged."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import BackendError
from metaxy.ext.postgresql import PostgreSQLMetadataStore

WRITER = textwrap.dedent(
    """
    import sys
    import polars as pl
    import metaxy as mx
    from metaxy.ext.postgresql import PostgreSQLMetadataStore

    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="conc/clip", id_columns=["sample_id"], fields=["audio"])):
        sample_id: str

    url, worker, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = PostgreSQLMetadataStore(url, schema="conc", auto_create_tables=True)
    with store.open("w"):
        for i in range(writes):
            ids = [f"w{worker}-{i}-{j}" for j in range(3)]
            rows = {"sample_id": ids, "metaxy_provenance_by_field": [{"audio": s} for s in ids]}
            store.write(Clip, pl.DataFrame(rows))
            print(i, flush=True)
    """
)


class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="conc/clip", id_columns=["sample_id"], fields=["audio"])):
    sample_id: str


def test_four_processes_fifty_writes_each_every_row_counted(postgres_url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), postgres_url, str(w), "50"], stdout=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    store = PostgreSQLMetadataStore(postgres_url, schema="conc")
    with store:
        df = store.read(Clip).collect().to_polars()
    assert df.height == 4 * 50 * 3
    assert df["sample_id"].n_unique() == 4 * 50 * 3


def test_a_server_that_goes_away_gives_a_typed_error_and_keeps_acknowledged_rows(tmp_path: Path) -> None:
    from metaxy.testing.postgres_cluster import PostgresCluster

    cluster = PostgresCluster.start()
    try:
        store = PostgreSQLMetadataStore(cluster.url, auto_create_tables=True)
        acknowledged = 0
        with pytest.raises(BackendError, match="Hint"), store.open("w"):
            for i in range(1000):
                if i == 5:
                    cluster.stop_server("immediate")
                ids = [f"{i}-{j}" for j in range(10)]
                frame = pl.DataFrame({"sample_id": ids, "metaxy_provenance_by_field": [{"audio": s} for s in ids]})
                store.write(Clip, frame)
                acknowledged += 10
        assert acknowledged == 50
        cluster.start_server()
        with store:
            assert store.read(Clip).collect().to_polars().height == acknowledged
    finally:
        cluster.stop()


def test_password_is_masked_in_repr_and_errors(postgres_cluster: Any) -> None:
    store = PostgreSQLMetadataStore(postgres_cluster.url.replace(postgres_cluster.password, "wrong-secret-pw"))
    assert "wrong-secret-pw" not in repr(store)
    with pytest.raises(BackendError) as info, store:
        pass
    assert "wrong-secret-pw" not in str(info.value)
    assert postgres_cluster.password not in repr(PostgreSQLMetadataStore(postgres_cluster.url))


def test_a_store_opening_while_another_writer_creates_its_schema_waits_for_it(postgres_url: str) -> None:
    """``CREATE SCHEMA IF NOT EXISTS`` is not safe against a concurrent creator: it waits for the
    other transaction and then fails with a unique violation. Another writer (here a raw connection
    doing what a store's open does: the schema lock, then the CREATE) holds its creation open; the
    store's open waits for it and then finds the schema."""
    import psycopg

    from metaxy.ext.postgresql import _LOCK_NAMESPACE

    other = psycopg.connect(postgres_url)
    errors: list[BaseException] = []
    try:
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, "schema"))
        other.execute("CREATE SCHEMA fresh")  # not committed yet

        def opener() -> None:
            try:
                with PostgreSQLMetadataStore(postgres_url, schema="fresh").open("w"):
                    pass
            except BaseException as exc:  # collected for the assertion
                errors.append(exc)

        thread = threading.Thread(target=opener)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # waiting for the other writer's transaction
        other.commit()
        thread.join(timeout=30)
    finally:
        other.close()
    assert errors == []
