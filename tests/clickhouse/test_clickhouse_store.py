"""The ClickHouse store beyond the conformance suite: connection strings and masking, the server
transport's connection against a real server (Debian's clickhouse-server 18.16, the only one that
installs here: too old for a resolve) and up to the wire (a closed port on 127.0.0.1 gives a typed
error), one chdb engine directory per process and processes taking turns on it, atomic staged
appends, Map and Struct round trips, the two forms of orphaned rows, and the statements it sends."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import metaxy as mx
from metaxy.errors import BackendError, InvalidConfigError, MetaxyWarning
from metaxy.ext.clickhouse import ClickHouseMetadataStore
from metaxy.ext.clickhouse._config import parse_target
from metaxy.ext.clickhouse.store import STAGE_PREFIX
from metaxy.testing.processes import run_together

from .conftest import Server

_dbs = itertools.count()
SECRET = "s3cr3t-Pa55word"


def _store(path: str, **kwargs: Any) -> ClickHouseMetadataStore:
    kwargs.setdefault("auto_create_tables", True)
    return ClickHouseMetadataStore(f"chdb://{path}?database=u{next(_dbs)}", **kwargs)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "secure", "db"),
    [
        (f"clickhouse+native://alice:{SECRET}@db.example:9000/meta", "db.example", 8123, False, "meta"),
        (f"clickhouse+native://alice:{SECRET}@db.example:9440/meta?secure=true", "db.example", 8443, True, "meta"),
        (f"clickhouse+http://alice:{SECRET}@db.example:8124/meta", "db.example", 8124, False, "meta"),
        (f"clickhouse+https://alice:{SECRET}@db.example/meta", "db.example", 8443, True, "meta"),
        ("clickhouse://db.example", "db.example", 8123, False, "default"),
    ],
)
def test_server_connection_strings(url: str, host: str, port: int, secure: bool, db: str) -> None:
    target = parse_target(url)
    assert (target.kind, target.host, target.port, target.secure, target.database) == ("server", host, port, secure, db)
    store = ClickHouseMetadataStore(url)
    assert SECRET not in repr(store) and SECRET not in store.display()
    if "alice" in url:
        assert target.password.get_secret_value() == SECRET and target.user == "alice"


def test_chdb_connection_strings() -> None:
    assert parse_target("chdb:///data/meta?database=x").path == "/data/meta"
    assert parse_target("chdb:///data/meta?database=x").database == "x"
    assert parse_target("chdb://:memory:").path == ":memory:"
    with pytest.raises(InvalidConfigError, match=r"not absolute.*Hint"):
        parse_target("chdb://relative/dir")
    with pytest.raises(InvalidConfigError, match="Unknown ClickHouse connection scheme 'mysql'"):
        ClickHouseMetadataStore(f"mysql://u:{SECRET}@h/db")
    with pytest.raises(InvalidConfigError, match="needs a connection_string or a host"):
        ClickHouseMetadataStore()


def test_parameters_override_the_string_and_the_config_masks_the_password() -> None:
    store = ClickHouseMetadataStore(
        "clickhouse+http://bob@h:8123/a", password=SECRET, database="b", http_port=18123, user="carol"
    )
    assert store.target.database == "b" and store.target.port == 18123 and store.target.user == "carol"
    config = ClickHouseMetadataStore.config_model().model_validate(
        {"connection_string": f"clickhouse+native://u:{SECRET}@h:9000/db", "password": SECRET}
    )
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump(mode="json"))


def test_the_type_path_builds_the_store_from_metaxy_toml(tmp_path: Any, chdb_engine_path: str) -> None:
    (tmp_path / "metaxy.toml").write_text(
        f"""
store = "ch"
[stores.ch]
type = "metaxy.ext.clickhouse.ClickHouseMetadataStore"
[stores.ch.config]
connection_string = "chdb://{chdb_engine_path}?database=toml"
table_prefix = "p_"
hash_algorithm = "xxhash64"
"""
    )
    config = mx.MetaxyConfig.load(tmp_path / "metaxy.toml")
    store = config.get_store("ch")
    assert isinstance(store, ClickHouseMetadataStore)
    assert store.table_prefix == "p_" and store.hash_algorithm.value == "xxhash64"
    assert store.target.database == "toml"


def test_a_closed_port_gives_a_typed_error_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    store = ClickHouseMetadataStore(
        f"clickhouse+http://alice:{SECRET}@127.0.0.1:{port}/meta", connect_timeout=2, auto_create_tables=True
    )
    with (
        pytest.raises(BackendError, match=r"Connecting on .*127\.0\.0\.1.* failed.*server is running") as info,
        store.open("w"),
    ):
        pass
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.__cause__)


@pytest.mark.xdist_group("clickhouse_server")
def test_a_real_server_refuses_a_wrong_password_with_a_typed_error_without_it(clickhouse_server: Server) -> None:
    wrong = "Not-the-Pa55word"
    url = f"clickhouse+http://{clickhouse_server.user}:{wrong}@127.0.0.1:{clickhouse_server.port}/default"
    store = ClickHouseMetadataStore(url, connect_timeout=5)
    with pytest.raises(BackendError, match=r"Connecting on .* failed: .*Wrong password") as info, store.open("r"):
        pass
    text = str(info.value)
    assert "check the user, the password and the database" in text  # not the unreachable-server hint
    assert wrong not in text and clickhouse_server.password not in text and info.value.__cause__ is None


@pytest.mark.xdist_group("clickhouse_server")
def test_a_real_server_too_old_for_metaxy_is_refused_with_the_version_needed(clickhouse_server: Server) -> None:
    """Debian's server (18.16) answers, but clickhouse-connect's start-up query fails on it: the
    error says what metaxy needs, and the data written so far (none) is safe."""
    assert int(clickhouse_server.version.split(".")[0]) < 25, clickhouse_server.version
    url = (
        f"clickhouse+http://{clickhouse_server.user}:{clickhouse_server.password}"
        f"@127.0.0.1:{clickhouse_server.port}/meta"
    )
    store = ClickHouseMetadataStore(url, connect_timeout=5, auto_create_tables=True)
    with (
        pytest.raises(BackendError, match=r"Connecting on .* failed: .*ClickHouse 25\.x or later") as info,
        store.open("w"),
    ):
        pass
    assert clickhouse_server.password not in str(info.value)


class _OldServer:
    """A server that answers the check but lacks a setting (ClickHouse 24.x): a fault no server
    here can give for real (Debian's 18.16 fails earlier, in clickhouse-connect's own start-up)."""

    def query_arrow(self, sql: str) -> Any:
        import pyarrow as pa

        assert "system.settings" in sql and "version()" in sql
        return pa.table({"v": ["24.3.1.1"], "known": [["join_use_nulls", "prefer_column_name_to_alias"]]})


def test_the_server_check_names_the_version_and_the_missing_settings(chdb_engine_path: str) -> None:
    from metaxy.ext.clickhouse._transport import TransportError, check_server

    with pytest.raises(TransportError, match=r"server 24\.3\.1\.1 lacks the settings enable_shared_storage") as info:
        check_server(_OldServer())  # type: ignore[arg-type]
    assert info.value.hint is not None and "25.x or later" in info.value.hint
    store = _store(chdb_engine_path)
    with store.open("r"):
        check_server(store.transport)  # the embedded engine (26.9) has every setting the statements set


# --- the embedded engine ------------------------------------------------------------------------------


def test_a_second_engine_directory_in_one_process_is_refused(chdb_engine_path: str, tmp_path: Any) -> None:
    with _store(chdb_engine_path).open("w"):
        pass
    other = ClickHouseMetadataStore(f"chdb://{tmp_path}?database=x")
    with pytest.raises(BackendError, match=r"one engine directory per process.*Hint"), other.open("r"):
        pass


class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="ch/clip", id_columns=["sid"], fields=["audio", "frames"])):
    sid: str


def _rows(n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sid": [f"s{i}" for i in range(start, start + n)],
            "metaxy_provenance_by_field": [{"audio": f"a{i}", "frames": f"f{i}"} for i in range(start, start + n)],
        }
    )


def test_an_append_that_fails_midway_leaves_no_rows_and_no_stage(chdb_engine_path: str) -> None:
    store = _store(chdb_engine_path)
    with store.open("w"):
        store.write(Clip, _rows(3))

        def boom(s: pl.Series) -> pl.Series:
            if (s == "s400000").any():
                raise RuntimeError("the user's frame broke")
            return s

        big = _rows(600_000).lazy().with_columns(pl.col("sid").map_batches(boom, return_dtype=pl.String))
        with pytest.raises(RuntimeError, match="the user's frame broke"):
            store.write(Clip, big)
        assert store.read(Clip).collect().to_polars().height == 3
        tables = store.transport.query_arrow("SELECT name FROM system.tables WHERE database = currentDatabase()")
    assert not [t for t in tables.column(0).to_pylist() if t.startswith(STAGE_PREFIX)]
    with store.open("r"):
        assert store.read(Clip).collect().to_polars().height == 3


def test_threads_writing_one_table_lose_nothing(chdb_engine_path: str) -> None:
    store = _store(chdb_engine_path)
    with store.open("w"):
        store.write(Clip, _rows(1))

    def work(k: int) -> None:
        with store.open("w"):
            for j in range(5):
                store.write(Clip, _rows(10, start=1000 * k + 10 * j + 1))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.open("r"):
        assert store.read(Clip).collect().to_polars().height == 1 + 4 * 5 * 10


# --- several processes on one engine directory ------------------------------------------------------
# chdb runs one engine per process and locks its directory while a store of the process is open, so
# these tests run the engine in child processes (this process's engine is on chdb_engine_path).

N_PROCESSES, OPENS_PER_PROCESS, ROWS_PER_OPEN = 3, 3, 10


def _take_turns(path: str, worker: int, start: Any) -> None:
    """One writer process: opens the store OPENS_PER_PROCESS times, one append per open."""
    store = ClickHouseMetadataStore(f"chdb://{path}?database=turns", auto_create_tables=True, lock_timeout=60)
    start.wait()
    for j in range(OPENS_PER_PROCESS):
        with store.open("w"):
            store.write(Clip, _rows(ROWS_PER_OPEN, start=1000 * worker + ROWS_PER_OPEN * j))


def _count_rows(path: str, out: Any) -> None:
    with ClickHouseMetadataStore(f"chdb://{path}?database=turns").open("r") as store:
        out.put(store.read(Clip).collect().to_polars().get_column("sid").sort().to_list())


def _hold_open(path: str, opened: Any) -> None:
    """Writes one row, then stalls in the middle of a 600k-row write (until killed)."""
    store = ClickHouseMetadataStore(f"chdb://{path}?database=turns", auto_create_tables=True)

    def stall(s: pl.Series) -> pl.Series:
        if (s == "s400000").any():
            opened.set()
            time.sleep(600)  # not an Event: killing a process waiting on one can break it for the others
        return s

    with store.open("w"):
        store.write(Clip, _rows(1))
        store.write(Clip, _rows(600_000).lazy().with_columns(pl.col("sid").map_batches(stall, return_dtype=pl.String)))


def _open_with(path: str, lock_timeout: float, out: Any) -> None:
    """Opens the store and reports the rows it sees and the staging tables it drops (or the error)."""
    store = ClickHouseMetadataStore(f"chdb://{path}?database=turns", lock_timeout=lock_timeout)
    out.put(("opening", "", 0))
    try:
        with store.open("w"):
            out.put(("opened", store.read(Clip).collect().to_polars().height, len(store.drop_stale_stages())))
    except Exception as exc:
        out.put((type(exc).__name__, str(exc), 0))


def _impatient_open(ctx: Any, path: str, out: Any) -> str:
    """Opens the store in a new process with a 0.5 s lock_timeout; returns its StoreBusyError's message."""
    impatient = ctx.Process(target=_open_with, args=(path, 0.5, out))
    impatient.start()
    assert out.get(timeout=120)[0] == "opening"
    kind, message, _ = out.get(timeout=120)
    impatient.join(timeout=60)
    assert kind == "StoreBusyError", message
    return str(message)


def _cache_across_turns(path: str, go: Any, out: Any) -> None:
    """Caches the table's schema and row count, closes, then (once another process wrote) reopens."""
    store = ClickHouseMetadataStore(f"chdb://{path}?database=epoch", auto_create_tables=True, lock_timeout=60)
    with store.open("w"):
        store.write(Clip, _rows(3))
        out.put((store._catalog("ch__clip")[1], "extra" in store._table_schema("ch__clip")))
    out.put("closed")
    go.wait(120)
    with store.open("r"):
        out.put((store._catalog("ch__clip")[1], "extra" in store._table_schema("ch__clip")))


def _write_with_a_new_column(path: str, start: Any) -> None:
    start.wait()
    store = ClickHouseMetadataStore(f"chdb://{path}?database=epoch", lock_timeout=60)
    with store.open("w"):
        store.write(Clip, _rows(4, start=10).with_columns(pl.lit("x").alias("extra")))


def test_a_process_taking_the_directory_again_forgets_what_it_cached(tmp_path: Any) -> None:
    """Another process may write while this one has the directory closed: the schema and the row
    count cached before are dropped when the directory is taken again (else the new column would be
    invisible and the row count, which picks the orphans' form, stale)."""
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    first = ctx.Process(target=_cache_across_turns, args=(str(tmp_path), go, out))
    first.start()
    try:
        assert out.get(timeout=120) == (3, False)
        assert out.get(timeout=120) == "closed"
        run_together(_write_with_a_new_column, [(str(tmp_path),)], timeout=120)
        go.set()
        assert out.get(timeout=120) == (7, True)
    finally:
        first.join(timeout=60)
        if first.is_alive():
            first.kill()


def test_writer_processes_take_turns_on_one_engine_directory_and_lose_nothing(tmp_path: Any) -> None:
    run_together(_take_turns, [(str(tmp_path), w) for w in range(N_PROCESSES)], timeout=180)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    reader = ctx.Process(target=_count_rows, args=(str(tmp_path), out))
    reader.start()
    sids = out.get(timeout=120)
    reader.join(timeout=60)
    expected = sorted(
        f"s{1000 * w + ROWS_PER_OPEN * j + i}"
        for w in range(N_PROCESSES)
        for j in range(OPENS_PER_PROCESS)
        for i in range(ROWS_PER_OPEN)
    )
    assert sids == expected


def test_an_open_waits_for_the_holding_process_and_a_killed_writer_leaves_no_rows(tmp_path: Any) -> None:
    """A process holds the directory in the middle of a write: another open gives StoreBusyError
    after its lock_timeout; a patient one is still waiting 2 s later, opens once the holder is
    SIGKILLed, and sees only the committed row (the killed write's staging table is dropped by
    drop_stale_stages)."""
    ctx = mp.get_context("spawn")
    opened, out = ctx.Event(), ctx.Queue()
    holder = ctx.Process(target=_hold_open, args=(str(tmp_path), opened))
    holder.start()
    try:
        assert opened.wait(120)
        message = _impatient_open(ctx, str(tmp_path), out)
        assert "another process has a metaxy store open on it (waited 0.5s)" in message and "Hint" in message
        patient = ctx.Process(target=_open_with, args=(str(tmp_path), 120, out))
        patient.start()
        assert out.get(timeout=120)[0] == "opening"
        time.sleep(2)
        assert out.empty()  # still waiting for the holder
        holder.kill()  # mid-write: its engine dies with it, and its locks go
        assert out.get(timeout=120) == ("opened", 1, 1)
        patient.join(timeout=60)
    finally:
        holder.kill()
        holder.join(timeout=60)
    assert holder.exitcode == -9


def _plain_engine(path: str, out: Any) -> None:
    """Runs chdb on the directory outside metaxy; reports what a metaxy store on another spelling of
    the same directory gives in this process, then keeps the engine up (until killed)."""
    import chdb

    conn = chdb.connect(path)
    try:
        with ClickHouseMetadataStore(f"chdb://{path}/?database=turns", lock_timeout=5).open("r"):
            out.put(("opened", ""))
    except Exception as exc:
        out.put((type(exc).__name__, str(exc)))
    time.sleep(600)
    conn.close()


def test_an_engine_opened_outside_metaxy_is_waited_for_and_named(tmp_path: Any) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    plain = ctx.Process(target=_plain_engine, args=(str(tmp_path), out))
    plain.start()
    try:
        kind, message = out.get(timeout=120)
        assert kind == "BackendError" and "this process's own engine runs on the directory" in message
        message = _impatient_open(ctx, str(tmp_path), out)
        assert f"the chdb engine of process {plain.pid} holds it (waited 0.5s)" in message
    finally:
        plain.kill()
        plain.join(timeout=60)


@pytest.mark.parametrize("map_mode", [False, True], ids=["struct", "map"])
def test_map_and_struct_columns_round_trip_exactly(chdb_engine_path: str, map_mode: bool) -> None:
    dtype = pl.Map(pl.String, pl.String) if map_mode else pl.Struct({"k": pl.String, "z": pl.String})
    values = [{"k": "v", "z": None}, {"k": None, "z": None}, {"k": "", "z": "é"}] if not map_mode else None
    if map_mode:
        entries: list[list[tuple[str, str | None]]] = [[("k", "v")], [], [("a", None), ("b", "")]]
        col = pl.Series("extra", [[{"key": k, "value": v} for k, v in e] for e in entries], dtype=dtype)
    else:
        col = pl.Series("extra", values, dtype=dtype)
    frame = _rows(3).with_columns(col)
    with mx.MetaxyConfig(enable_map_datatype=map_mode).use():
        store = _store(chdb_engine_path)
        with store.open("w"):
            store.write(Clip, frame)
            got = store.read(Clip).collect().to_polars().sort("sid")
    assert got.schema["extra"] == dtype
    assert_frame_equal(got.select("sid", "extra"), frame.select("sid", "extra"))
    want_by_field = pl.Map(pl.String, pl.String) if map_mode else pl.Struct({"audio": pl.String, "frames": pl.String})
    assert got.schema["metaxy_provenance_by_field"] == want_by_field


def test_tables_are_mergetree_ordered_by_the_ids_and_deletes_are_lightweight(chdb_engine_path: str) -> None:
    store = _store(chdb_engine_path)
    with store.open("w"):
        store.write(Clip, _rows(4))
        info = store.transport.query_arrow(
            "SELECT engine, sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'ch__clip'"
        ).to_pylist()
        assert [(i["engine"], i["sorting_key"].strip("()")) for i in info] == [("MergeTree", "sid")]
        assert store.delete(Clip, "sid IN ('s0', 's1')", soft=False) == 2
        assert sorted(store.read(Clip).collect().to_polars()["sid"]) == ["s2", "s3"]
        assert store.delete(Clip, "sid = 'none'", soft=False) == 0


# Published vectors of each algorithm over UTF-8 bytes (RFC 1321, FIPS 180-2, xxHash's reference),
# copied here; the dialect's SQL computed by chdb must give exactly these strings.
VECTORS = {
    "md5": {"": "d41d8cd98f00b204e9800998ecf8427e", "abc": "900150983cd24fb0d6963f7d28e17f72"},
    "sha256": {
        "": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    },
    "xxhash32": {"": "46947589", "abc": "852579327"},
    "xxhash64": {"": "17241709254077376921", "abc": "4952883123889572249"},
}


@pytest.mark.parametrize("algorithm", sorted(VECTORS))
def test_the_dialect_hashes_like_the_published_vectors_and_the_python_reference(
    chdb_engine_path: str, algorithm: str
) -> None:
    from sqlglot import exp

    from metaxy.sql.dialects import ClickHouseDialect
    from metaxy.versioning.hashing import HashAlgorithm, hash_string

    d = ClickHouseDialect()
    store = _store(chdb_engine_path)
    texts = [*VECTORS[algorithm], "é|ü|日本", "a" * 1000]
    with store.open("r"):
        for text in texts:
            sql = f"SELECT {d.hash(exp.Literal.string(text), HashAlgorithm(algorithm), 64).sql(dialect='clickhouse')}"
            got = store.transport.scalar(sql)
            assert got == hash_string(algorithm, text, 64)
            if text in VECTORS[algorithm]:
                assert got == VECTORS[algorithm][text]


class ClipNote(
    mx.BaseFeature, spec=mx.FeatureSpec(key="ch/clip_note", id_columns=["sid"], deps=[Clip], fields=["audio"])
):
    sid: str


@contextlib.contextmanager
def _sent(store: ClickHouseMetadataStore) -> Iterator[list[str]]:
    """The queries the store sends while the block runs."""
    sent: list[str] = []
    query = store.transport.query_arrow

    def spy(sql: str) -> Any:
        sent.append(sql)
        return query(sql)

    store.transport.query_arrow = spy  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        store.transport.query_arrow = query  # type: ignore[method-assign]


def _increment_and_sql(store: ClickHouseMetadataStore) -> tuple[dict[str, pl.DataFrame], str]:
    with _sent(store) as sent:
        inc = store.resolve_update(ClipNote, versioning_engine="native").to_polars()
    parts = {"new": inc.new, "stale": inc.stale, "orphaned": inc.orphaned}
    return {k: v.sort("sid") for k, v in parts.items()}, next(s for s in sent if "__metaxy_kind" in s)


def test_orphans_are_carried_for_small_tables_and_fetched_back_for_large_ones(
    chdb_engine_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to CARRY_MAX_ROWS stored rows the comparison carries them (one packed tuple per row),
    above it orphaned rows are fetched back by row number: the same increment either way. The row
    count the choice reads is cached and follows this process's writes."""
    from metaxy.ext.clickhouse import store as ch_store

    store = _store(chdb_engine_path)
    with store.open("w"):
        store.write(Clip, _rows(6))
        store.write(ClipNote, store.resolve_update(ClipNote).to_polars().new)
        assert store._catalog("ch__clip_note")[1] == 6
        assert store.delete(Clip, "sid = 's0'", soft=False) == 1
        store.write(
            Clip, pl.DataFrame({"sid": ["s1"], "metaxy_provenance_by_field": [{"audio": "new", "frames": "f1"}]})
        )
        carried, carried_sql = _increment_and_sql(store)
        assert "__metaxy_orow" in carried_sql and "_part_offset" not in carried_sql
        assert carried["orphaned"]["sid"].to_list() == ["s0"] and carried["stale"]["sid"].to_list() == ["s1"]
        stored = store.read(ClipNote).collect().to_polars().filter(pl.col("sid") == "s0")
        assert_frame_equal(carried["orphaned"], stored.select(carried["orphaned"].columns))

        monkeypatch.setattr(ch_store, "CARRY_MAX_ROWS", 5)  # the 6 stored rows are now "large"
        fetched, fetched_sql = _increment_and_sql(store)
        assert "_part_offset" in fetched_sql and "__metaxy_orow" not in fetched_sql
        for part in ("new", "stale", "orphaned"):
            assert_frame_equal(fetched[part], carried[part])

        more = pl.DataFrame({"sid": ["s10", "s11"], "metaxy_provenance_by_field": [{"audio": "a"}] * 2})
        with pytest.warns(MetaxyWarning, match="without 'metaxy_provenance'"):
            store.write(ClipNote, more)
        assert store._catalog("ch__clip_note")[1] == 8  # the write invalidated the cached 6
        with _sent(store) as sent:
            assert store._catalog("ch__clip_note")[1] == 8 and not sent  # cached: no catalog query
            assert store.delete(ClipNote, "sid = 's10'", soft=False) == 1
            sent.clear()
            store._carries("ch__clip_note")
            assert any("total_rows" in q for q in sent)  # the delete invalidated it
