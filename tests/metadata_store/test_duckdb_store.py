"""DuckDB-specific behaviour: one-statement resolves, atomic streaming writes, file locking,
hash algorithms, quoting, configuration."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

import metaxy as mx
from metaxy.errors import FilterParseError, HashAlgorithmNotSupportedError
from metaxy.ext.duckdb import DuckDBMetadataStore

pytestmark = pytest.mark.filterwarnings("ignore:Creating table")


def _features() -> tuple[type[mx.BaseFeature], type[mx.BaseFeature]]:
    class Raw(
        mx.BaseFeature, spec=mx.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", "frames"])
    ):
        video_id: str

    class Transcript(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="video/transcript",
            id_columns=["video_id"],
            deps=[Raw],
            fields=[mx.FieldSpec(key="text", deps=[mx.FieldDep(feature=Raw, fields=["audio"])])],
        ),
    ):
        video_id: str

    return Raw, Transcript


def _raw(ids: list[str], audio: str = "a") -> pl.DataFrame:
    return pl.DataFrame(
        {"video_id": ids, "metaxy_provenance_by_field": [{"audio": f"{audio}{i}", "frames": f"f{i}"} for i in ids]}
    )


class _CountingConnection:
    """A spy around the real DuckDB connection: counts the statements sent, forwards everything."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def sql(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self.statements.append(query)
        return self._conn.sql(query, *args, **kwargs)

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self.statements.append(query)
        return self._conn.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_resolve_update_is_one_statement_and_only_the_increment_is_fetched(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    raw, transcript = _features()
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)
    with store.open("w"):
        store.write(raw, _raw([f"v{i}" for i in range(1000)]))
        store.write(transcript, store.resolve_update(transcript).new)
        store.write(raw, _raw(["v1", "v2"], audio="changed"))
    with store.open("r"):
        spy = _CountingConnection(store._conn)
        store._local.backend["conn"] = spy
        inc = store.resolve_update(transcript)
    data = [q for q in spy.statements if not q.upper().startswith("PRAGMA TABLE_INFO")]  # catalog look-ups aside
    assert len(data) == 1
    assert "FULL OUTER JOIN" in data[0]
    assert (len(inc.new), len(inc.stale), len(inc.orphaned)) == (0, 2, 0)
    assert sorted(inc.stale.to_polars()["video_id"]) == ["v1", "v2"]


def test_lazy_increment_stays_in_duckdb(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    raw, transcript = _features()
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)
    with store.open("w"):
        store.write(raw, _raw(["a", "b"]))
        lazy = store.resolve_update(transcript, lazy=True)
        assert type(lazy.new.to_native()).__name__ == "DuckDBPyRelation"
        assert lazy.input is not None
        assert type(lazy.input.to_native()).__name__ == "DuckDBPyRelation"
        assert sorted(lazy.new.collect().to_polars()["video_id"]) == ["a", "b"]
        eager = lazy.collect()
    assert len(eager.new) == 2 and len(eager.stale) == 0


def test_xxhash_is_refused_at_open_naming_the_supported_algorithms(tmp_path: Path) -> None:
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", hash_algorithm="xxhash64")
    with pytest.raises(HashAlgorithmNotSupportedError, match=r"Supported: \['md5', 'sha256'\]"), store.open("r"):
        pass
    assert not (tmp_path / "m.duckdb").exists()


def test_sha256_store(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    raw, transcript = _features()
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", hash_algorithm="sha256", auto_create_tables=True)
    with store.open("w"):
        store.write(raw, _raw(["a"]))
        prov = store.resolve_update(transcript).new.to_polars()["metaxy_provenance"][0]
    assert len(prov) == 8 and all(ch in "0123456789abcdef" for ch in prov)


def test_writes_accept_lazy_frames_arrow_and_pandas(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    raw, _ = _features()
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)
    with store.open("w"):
        assert store.write(raw, _raw(["a"]).lazy()) == 1
        assert store.write(raw, _raw(["b"]).to_arrow()) == 1
        assert store.write(raw, _raw(["c"]).to_pandas()) == 1
        ids = sorted(store.read(raw).collect().to_polars()["video_id"])
    assert ids == ["a", "b", "c"]


def test_awkward_identifiers_are_quoted(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    class Odd(mx.BaseFeature, spec=mx.FeatureSpec(key="my-org/select", id_columns=['id"x'])):
        pass

    store = DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)
    frame = pl.DataFrame({'id"x': ["a", "b"], "from": [1, 2], "metaxy_provenance_by_field": [{"default": "p"}] * 2})
    with store.open("w"):
        store.write(Odd, frame)
        got = store.read(Odd, filters=['"from" = 2']).collect().to_polars()
        assert store.list_features() == [mx.FeatureKey("my-org/select")]
    assert got['id"x'].to_list() == ["b"]


def test_injection_in_a_filter_is_refused_before_anything_runs(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    raw, _transcript = _features()
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)
    with store.open("w"):
        store.write(raw, _raw(["a"]))
        with pytest.raises(FilterParseError):
            store.read(raw, filters=["video_id = 'a'; DROP TABLE video__raw"])
        with pytest.raises(FilterParseError):
            store.delete(raw, "1 = 1; DROP TABLE video__raw", soft=False)
        assert store.read(raw).collect().to_polars()["video_id"].to_list() == ["a"]


def test_configured_by_type_path(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    config = mx.MetaxyConfig(
        stores={
            "dev": {
                "type": "metaxy.ext.duckdb.DuckDBMetadataStore",
                "config": {"database": str(tmp_path / "c.duckdb"), "hash_algorithm": "sha256"},
            }
        },
        auto_create_tables=True,
    )
    store = config.get_store()
    assert isinstance(store, DuckDBMetadataStore)
    assert store.hash_algorithm == mx.HashAlgorithm.SHA256 and store.auto_create_tables
    raw, _ = _features()
    with store.open("w"):
        store.write(raw, _raw(["a"]))
    again = pickle.loads(pickle.dumps(store))
    with again.open("r"):
        assert again.read(raw).collect().to_polars()["video_id"].to_list() == ["a"]


_WRITER = textwrap.dedent(
    """
    import sys, time, warnings
    import polars as pl
    import metaxy as mx
    from metaxy.ext.duckdb import DuckDBMetadataStore
    warnings.simplefilter("ignore")

    class Big(mx.BaseFeature, spec=mx.FeatureSpec(key="big", id_columns=["i"])):
        i: int

    path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    frame = pl.LazyFrame({"i": pl.int_range(0, n, eager=True)}).with_columns(
        metaxy_provenance_by_field=pl.struct(default=pl.col("i").cast(pl.String))
    )
    store = DuckDBMetadataStore(path, auto_create_tables=True, lock_timeout=float(sys.argv[4]))
    with store.open("w"):
        print("OPEN", flush=True)
        if mode == "hold":
            sys.stdin.readline()
        else:
            store.write(Big, frame)
    print("DONE", flush=True)
    """
)


def _writer(tmp_path: Path, db: Path, n: int, mode: str, timeout: float = 30.0) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(db), str(n), mode, str(timeout)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _count_big(db: Path) -> int:
    with mx.FeatureGraph().use():

        class Big(mx.BaseFeature, spec=mx.FeatureSpec(key="big", id_columns=["i"])):
            i: int

        store = DuckDBMetadataStore(db)
        with store.open("r"):
            if not store.has_feature(Big):
                return 0
            return len(store.read(Big, with_sample_history=True).collect())


def test_a_killed_writer_leaves_no_partial_rows(tmp_path: Path) -> None:
    db = tmp_path / "kill.duckdb"
    first = _writer(tmp_path, db, 1000, "write")
    assert first.wait(120) == 0
    n = 3_000_000
    proc = _writer(tmp_path, db, n, "write")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "OPEN"
    time.sleep(0.5)  # let the insert get under way (the assertion holds whatever the timing)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    assert _count_big(db) in (1000, 1000 + n)


def test_a_second_writer_process_waits_then_fails_clearly(tmp_path: Path) -> None:
    db = tmp_path / "lock.duckdb"
    holder = _writer(tmp_path, db, 0, "hold")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "OPEN"
    try:
        waiting = _writer(tmp_path, db, 10, "write", timeout=0.5)
        _, err = waiting.communicate(timeout=120)
        assert waiting.returncode != 0
        assert "StoreBusyError" in err and "locked by another process" in err
        patient = _writer(tmp_path, db, 10, "write", timeout=60)
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(60) == 0
        _out, err = patient.communicate(timeout=120)
        assert patient.returncode == 0, err
    finally:
        if holder.poll() is None:
            holder.kill()
    assert _count_big(db) == 10


def test_arrow_table_of_many_rows_streams_in(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    class Many(mx.BaseFeature, spec=mx.FeatureSpec(key="many", id_columns=["i"])):
        i: int

    n = 600_000  # more than two write chunks
    table = pa.table({"i": pa.array(range(n), pa.int64())})
    frame = pl.from_arrow(table).with_columns(  # type: ignore[union-attr]
        metaxy_provenance_by_field=pl.struct(default=pl.col("i").cast(pl.String))
    )
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)
    with store.open("w"):
        assert store.write(Many, frame.to_arrow()) == n
        assert len(store.read(Many).collect()) == n
    assert os.path.getsize(tmp_path / "m.duckdb") > 0


def test_tables_are_created_only_when_allowed_and_with_a_warning(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    raw, _ = _features()
    strict = DuckDBMetadataStore(tmp_path / "strict.duckdb", auto_create_tables=False)
    with strict.open("w"), pytest.raises(mx.errors.TableNotFoundError, match="auto_create_tables"):
        strict.write(raw, _raw(["a"]))
    relaxed = DuckDBMetadataStore(tmp_path / "relaxed.duckdb", auto_create_tables=True)
    with relaxed.open("w"), pytest.warns(UserWarning, match="Creating table 'video__raw'"):
        relaxed.write(raw, _raw(["a"]))


def test_memory_limit_defaults_for_an_embedded_file_store(tmp_path: Path) -> None:
    from metaxy.metadata_store.duckdb import default_memory_limit

    ram_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert default_memory_limit() == f"{min(2048, int(ram_mib * 0.8))}MiB"
    assert default_memory_limit(cap_mib=10**9) == f"{int(ram_mib * 0.8)}MiB"  # never above 80 % of RAM

    def setting(store: DuckDBMetadataStore) -> str:
        with store.open("r"):
            return str(store.conn.sql("SELECT current_setting('memory_limit')").fetchall()[0][0])

    def mib(text: str) -> float:
        value, unit = text.split()
        return float(value) * {"MiB": 1, "GiB": 1024}[unit]

    assert mib(setting(DuckDBMetadataStore(tmp_path / "a.duckdb"))) == pytest.approx(min(2048, int(ram_mib * 0.8)))
    assert mib(setting(DuckDBMetadataStore(tmp_path / "b.duckdb", config={"memory_limit": "3GiB"}))) == 3072
    in_memory = DuckDBMetadataStore(":memory:")
    assert "memory_limit" not in in_memory.duckdb_config  # the data lives in the buffer pool
    assert mib(setting(in_memory)) > 2048 or ram_mib * 0.8 <= 2048


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("metadata.csv", b"a,b\n1,2\n", "is not a DuckDB database"),
        ("metadata.tsv", b"a\tb\n1\t2\n", "is not a DuckDB database"),
        ("metadata.txt", b"hello", "is not a DuckDB database"),
        ("metadata.duckdb", b"", "is an empty file"),
        ("truncated.duckdb", None, "is not a DuckDB database"),
        ("metadata.parquet", "parquet", "is not a DuckDB database"),
    ],
)
def test_a_path_that_is_not_a_duckdb_file_is_refused_at_open(
    tmp_path: Path, graph: mx.FeatureGraph, name: str, content: Any, expected: str
) -> None:
    from metaxy.errors import BackendError

    path = tmp_path / name
    if content is None:  # a real database cut short
        real = tmp_path / "real.duckdb"
        with DuckDBMetadataStore(real, auto_create_tables=True).open("w") as s:
            s.write(_features()[0], _raw(["a"]))
        path.write_bytes(real.read_bytes()[:6])
    elif content == "parquet":
        pl.DataFrame({"a": [1]}).write_parquet(path)
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    store = DuckDBMetadataStore(path, auto_create_tables=True)
    with pytest.raises(BackendError, match=expected) as info, store.open("w"):
        pass
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_a_directory_or_a_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    from metaxy.errors import BackendError

    (tmp_path / "dir.duckdb").mkdir()
    (tmp_path / "plain").write_text("x")
    with pytest.raises(BackendError, match="is a directory"), DuckDBMetadataStore(tmp_path / "dir.duckdb").open("w"):
        pass
    with (
        pytest.raises(BackendError, match=r"'.*plain' is a file, not a directory"),
        DuckDBMetadataStore(tmp_path / "plain" / "sub" / "m.duckdb").open("w"),
    ):
        pass
    assert (tmp_path / "plain").read_text() == "x"
