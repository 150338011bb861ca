"""Atomicity under real faults: a writer SIGKILLed in the middle of its COPY leaves nothing; a server
that goes away (stopped, or the backend terminated) during a COPY or a resolve gives a typed error
and loses nothing acknowledged.

The fault is timed on the server's own view: a watcher polls ``pg_stat_activity`` until the
victim's ``COPY`` statement is running, then strikes. These tests use a cluster of their own
(one server stop must not disturb the session cluster's other tests).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest

import metaxy as mx
from metaxy.errors import BackendError
from metaxy.ext.postgresql import PostgreSQLMetadataStore
from metaxy.testing.postgres_cluster import PostgresCluster

# One worker runs the module: its module-scoped PostgreSQL cluster starts once, not once per worker.
pytestmark = pytest.mark.xdist_group("pg_faults")

BIG = 200_000  # rows of the interrupted write: its COPY runs for a good fraction of a second


class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="faults/clip", id_columns=["sample_id"], fields=["audio"])):
    sample_id: str


class Caption(mx.BaseFeature, spec=mx.FeatureSpec(key="faults/caption", id_columns=["sample_id"], deps=[Clip])):
    sample_id: str


def frame(prefix: str, n: int) -> pl.DataFrame:
    ids = pl.int_range(0, n, eager=True).cast(pl.String)
    sid = (prefix + ids).alias("sample_id")
    return pl.DataFrame([sid]).with_columns(pl.struct(audio=pl.col("sample_id")).alias("metaxy_provenance_by_field"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    c = PostgresCluster.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def url(cluster: PostgresCluster, request: pytest.FixtureRequest) -> str:
    return cluster.create_database(request.node.name.lower()[:50])


def wait_for_statement(url: str, prefix: str, timeout: float = 60.0) -> int:
    """The pid of the backend running a statement starting with ``prefix`` (polled until it runs)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE %s",
                (prefix.replace("%", r"\%") + "%",),
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.005)
    raise AssertionError(f"no statement {prefix!r} seen within {timeout}s")


def strike_during(url: str, prefix: str, fault: Callable[[int], None]) -> threading.Thread:
    """Start a watcher thread that runs ``fault(pid)`` as soon as the statement runs."""
    errors: list[BaseException] = []

    def watch() -> None:
        try:
            fault(wait_for_statement(url, prefix))
        except BaseException as exc:  # reported by the test through the thread's result
            errors.append(exc)

    thread = threading.Thread(target=watch, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def count(url: str, prefix: str | None = None) -> int:
    with PostgreSQLMetadataStore(url) as store:
        df = store.read(Clip).collect().to_polars()
    return df.height if prefix is None else df.filter(pl.col("sample_id").str.starts_with(prefix)).height


WRITER = textwrap.dedent(
    """
    import sys
    import polars as pl
    import metaxy as mx
    from metaxy.ext.postgresql import PostgreSQLMetadataStore

    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="faults/clip", id_columns=["sample_id"], fields=["audio"])):
        sample_id: str

    def frame(prefix, n):
        sid = (prefix + pl.int_range(0, n, eager=True).cast(pl.String)).alias("sample_id")
        prov = pl.struct(audio=pl.col("sample_id")).alias("metaxy_provenance_by_field")
        return pl.DataFrame([sid]).with_columns(prov)

    store = PostgreSQLMetadataStore(sys.argv[1], auto_create_tables=True)
    with store.open("w"):
        store.write(Clip, frame("acked-", 100))
        print("acknowledged", flush=True)
        store.write(Clip, frame("big-", int(sys.argv[2])))
        print("big written", flush=True)
    """
)


def test_a_writer_killed_in_the_middle_of_its_copy_leaves_nothing(url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), url, str(BIG)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "acknowledged"
        wait_for_statement(url, "COPY ")
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert "big written" not in out
    # the server notices the lost client and rolls its transaction back; nothing of it is visible
    assert count(url, "big-") == 0
    assert count(url, "acked-") == 100
    # and the table takes new writes (no lock or half-made state left behind)
    with PostgreSQLMetadataStore(url).open("w") as store:
        store.write(Clip, frame("after-", 10))
    assert count(url) == 110


def test_a_server_stopped_during_a_copy_gives_a_typed_error_and_keeps_acknowledged_rows(
    cluster: PostgresCluster, url: str
) -> None:
    store = PostgreSQLMetadataStore(url, auto_create_tables=True)
    watcher = strike_during(url, "COPY ", lambda pid: cluster.stop_server("immediate"))
    try:
        with pytest.raises(BackendError, match="server is running and reachable") as info, store.open("w"):
            store.write(Clip, frame("acked-", 100))
            store.write(Clip, frame("big-", BIG))
    finally:
        watcher.join(60)
        cluster.start_server()
    assert not watcher.errors  # type: ignore[attr-defined]
    assert cluster.password not in str(info.value)
    assert count(url, "big-") == 0
    assert count(url, "acked-") == 100


def test_a_backend_terminated_during_a_copy_gives_a_typed_error_and_keeps_acknowledged_rows(url: str) -> None:
    store = PostgreSQLMetadataStore(url, auto_create_tables=True)

    def terminate(pid: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with store.open("w"):
        store.write(Clip, frame("acked-", 100))
        watcher = strike_during(url, "COPY ", terminate)
        with pytest.raises(BackendError, match="Writing table 'faults__clip'"):
            store.write(Clip, frame("big-", BIG))
        watcher.join(60)
    assert not watcher.errors  # type: ignore[attr-defined]
    assert count(url, "big-") == 0
    assert count(url, "acked-") == 100


def test_a_server_that_goes_away_during_a_resolve_gives_a_typed_error_and_loses_nothing(
    cluster: PostgresCluster, url: str
) -> None:
    n = 100_000
    with PostgreSQLMetadataStore(url, auto_create_tables=True).open("w") as store:
        store.write(Clip, frame("s", n))
        store.write(Caption, store.resolve_update(Caption).new.head(1000))

    def terminate(pid: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

    store = PostgreSQLMetadataStore(url)
    for fault in (terminate, lambda pid: cluster.stop_server("immediate")):
        watcher = strike_during(url, "COPY (SELECT", fault)
        try:
            with pytest.raises(BackendError, match="Reading") as info, store.open("r"):
                store.resolve_update(Caption)
        finally:
            watcher.join(60)
            if fault is not terminate:
                cluster.start_server()
        assert not watcher.errors  # type: ignore[attr-defined]
        assert cluster.password not in str(info.value)
    with store.open("r"):
        inc: Any = store.resolve_update(Caption)
        assert (len(inc.new), len(inc.stale)) == (n - 1000, 0)
        assert store.read(Caption).collect().to_polars().height == 1000
