"""A DuckDB store file is attached to a per-process host instance while open: reopening is cheap,
and the file behaves exactly as with ``duckdb.connect``/``close`` (lock, WAL, settings)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import BackendError
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.metadata_store import _duckdb_hosts

pytestmark = pytest.mark.filterwarnings("ignore:Creating table")


def _item() -> type[mx.BaseFeature]:
    class Item(mx.BaseFeature, spec=mx.FeatureSpec(key="hosts/item", id_columns=["i"])):
        i: int

    return Item


def _rows(ids: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"i": ids}).with_columns(
        metaxy_provenance_by_field=pl.struct(default=pl.col("i").cast(pl.String))
    )


@pytest.fixture(autouse=True)
def _fresh_hosts() -> Iterator[None]:
    _duckdb_hosts.reset()
    yield
    _duckdb_hosts.reset()


def _mark_instance(store: DuckDBMetadataStore) -> None:
    """Leave a macro in the host instance's own catalog (not in the attached file)."""
    store.conn.execute("CREATE OR REPLACE MACRO memory.main.host_probe() AS 42")


def _instance_is_marked(store: DuckDBMetadataStore) -> bool:
    try:
        return store.conn.sql("SELECT memory.main.host_probe()").fetchall() == [(42,)]
    except duckdb.CatalogException:
        return False


def _other_process_count(db: Path) -> str:
    code = f"import duckdb; print(duckdb.connect({str(db)!r}).sql('SELECT count(*) FROM hosts__item').fetchall()[0][0])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_reopened_file_reuses_its_host_instance(tmp_path: Path) -> None:
    db = tmp_path / "reuse.duckdb"
    with DuckDBMetadataStore(db).open("w") as first:
        _mark_instance(first)
    with DuckDBMetadataStore(db).open("r") as again:
        assert _instance_is_marked(again)
    _duckdb_hosts.reset()  # idle hosts are closed: the next open builds a fresh instance
    with DuckDBMetadataStore(db).open("r") as fresh:
        assert not _instance_is_marked(fresh)


def test_a_closed_store_releases_the_lock_and_checkpoints(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    Item = _item()
    db = tmp_path / "release.duckdb"
    store = DuckDBMetadataStore(db, auto_create_tables=True)
    with store.open("w"):
        store.write(Item, _rows([1, 2, 3]))
        assert (tmp_path / "release.duckdb.wal").exists()
    assert not (tmp_path / "release.duckdb.wal").exists()  # detach checkpoints, as close did
    assert _other_process_count(db) == "3"  # another process can lock the file now
    with store.open("r"):
        assert len(store.read(Item).collect()) == 3


def test_the_file_keeps_its_catalog_name_and_spill_directory(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    Item = _item()
    for name, alias in (("videos.duckdb", "videos"), ("memory.duckdb", "metaxy_store")):
        store = DuckDBMetadataStore(tmp_path / name, auto_create_tables=True)
        with store.open("w"):
            store.write(Item, _rows([1]))
            assert store.conn.sql("SELECT current_database()").fetchall() == [(alias,)]
            temp_dir = store.conn.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]
            assert temp_dir == os.path.realpath(tmp_path / name) + ".tmp"
            assert store.list_features() == [Item.spec().key]


def test_two_stores_on_one_file_share_the_attachment(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    Item = _item()
    db = tmp_path / "shared.duckdb"
    a = DuckDBMetadataStore(db, auto_create_tables=True)
    b = DuckDBMetadataStore(db)
    with a.open("w"):
        with b.open("r"):
            a.write(Item, _rows([1, 2]))
            assert len(b.read(Item).collect()) == 2
        a.write(Item, _rows([3]))  # b's close did not detach the file under a
        assert len(a.read(Item).collect()) == 3
    assert _other_process_count(db) == "3"


def test_other_settings_for_an_open_file_are_refused_then_applied_once_it_is_closed(tmp_path: Path) -> None:
    db = tmp_path / "settings.duckdb"
    default = DuckDBMetadataStore(db)
    bigger = DuckDBMetadataStore(db, config={"memory_limit": "3GiB"})
    with default.open("r"):
        with pytest.raises(BackendError, match="already open in this process with other settings"):
            bigger.open("r").__enter__()
        assert not bigger.is_open
        assert default.conn.sql("SELECT 1").fetchall() == [(1,)]  # the open store is untouched
    with bigger.open("r"):
        assert bigger.conn.sql("SELECT current_setting('memory_limit')").fetchall() == [("3.0 GiB",)]


def test_idle_hosts_are_bounded(tmp_path: Path) -> None:
    oldest = DuckDBMetadataStore(tmp_path / "oldest.duckdb")
    with oldest.open("r"):
        _mark_instance(oldest)
    for k in range(_duckdb_hosts.MAX_IDLE_HOSTS - 1):
        with DuckDBMetadataStore(tmp_path / f"f{k}.duckdb").open("r"):
            pass
    with oldest.open("r"):  # still among the idle hosts kept
        assert _instance_is_marked(oldest)
    for k in range(_duckdb_hosts.MAX_IDLE_HOSTS):
        with DuckDBMetadataStore(tmp_path / f"g{k}.duckdb").open("r"):
            pass
    with oldest.open("r"):  # the least recently used host was closed
        assert not _instance_is_marked(oldest)


def test_a_bad_file_or_bad_settings_give_a_backend_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackendError, match="is not a DuckDB database"):
        DuckDBMetadataStore(junk).open("r").__enter__()
    assert junk.read_bytes() == b"this is not a database" * 100
    with pytest.raises(BackendError, match="Invalid DuckDB config"):
        DuckDBMetadataStore(tmp_path / "ok.duckdb", config={"no_such_setting": 1}).open("r").__enter__()
    assert not (tmp_path / "ok.duckdb").exists()


def test_read_only_access_mode_attaches_the_file_read_only(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    Item = _item()
    db = tmp_path / "ro.duckdb"
    with DuckDBMetadataStore(db, auto_create_tables=True).open("w") as writer:
        writer.write(Item, _rows([1, 2]))
    reader = DuckDBMetadataStore(db, config={"access_mode": "READ_ONLY"})
    with reader.open("r"):
        assert len(reader.read(Item).collect()) == 2
        with pytest.raises(duckdb.Error, match="read-only"):
            reader.conn.execute("CREATE TABLE t (x INT)")


def _insert_in_child(db: str) -> None:
    # SQL only: Polars' thread pool does not survive a fork (Polars documents this), DuckDB's must not matter
    with DuckDBMetadataStore(db).open("w") as store:
        store.conn.execute("INSERT INTO t VALUES (2)")


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs fork")
def test_a_forked_child_never_touches_its_parents_instance(tmp_path: Path) -> None:
    db = tmp_path / "fork.duckdb"
    store = DuckDBMetadataStore(db)
    with store.open("w"):
        store.conn.execute("CREATE TABLE t (x INT)")
        store.conn.execute("INSERT INTO t VALUES (1)")
        _mark_instance(store)
    # the parent holds an idle host for the file: it is closed before the fork, never shared
    child = multiprocessing.get_context("fork").Process(target=_insert_in_child, args=(str(db),))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    with store.open("r"):
        assert store.conn.sql("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
        assert not _instance_is_marked(store)


def test_threads_opening_and_closing_one_file_leave_it_released(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    from concurrent.futures import ThreadPoolExecutor

    Item = _item()
    db = tmp_path / "threads.duckdb"
    with DuckDBMetadataStore(db, auto_create_tables=True).open("w") as store:
        store.write(Item, _rows(list(range(100))))

    def reader(_: int) -> int:
        total = 0
        for _round in range(20):
            with DuckDBMetadataStore(db).open("r") as s:
                total += s.conn.sql("SELECT count(*) FROM hosts__item").fetchall()[0][0]
        return total

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(reader, range(6))) == [2000] * 6
    assert _other_process_count(db) == "100"  # the last close detached the file


def test_a_relative_path_is_released_even_after_a_chdir(
    tmp_path: Path, graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    Item = _item()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    store = DuckDBMetadataStore("rel.duckdb", auto_create_tables=True)
    with store.open("w"):
        store.write(Item, _rows([1, 2]))
        monkeypatch.chdir(tmp_path / "elsewhere")  # the close must still find the file's host
    assert _other_process_count(tmp_path / "rel.duckdb") == "2"
