"""``DeltaMetadataStore`` specifics: table layout, Delta types, config, pickling, fallbacks,
concurrent writers and killed writers. Shared store semantics live in ``tests/conformance``."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.errors import FeatureNotFoundError, MetadataSchemaError, StoreCapabilityError
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore, DeltaMetadataStoreConfig
from metaxy.frames import collect_to_polars
from metaxy.metadata_store.memory import InMemoryMetadataStore
from metaxy.metadata_store.system import SystemTableStorage
from metaxy.models.constants import DELETED_AT, FEATURE_VERSION, PROVENANCE_BY_FIELD, UPDATED_AT
from metaxy.testing.conformance_support import define_video_features, id_set, rows, samples
from metaxy.testing.processes import run_together

DELTA_TYPE = "metaxy.ext.polars.handlers.delta.DeltaMetadataStore"


def _clip() -> type[mx.BaseFeature]:
    class Clip(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="media/clips/raw", id_columns=["sample_id"], fields=["default"]),
    ):
        sample_id: str

    return Clip


def _table_dirs(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.delta")}


# --- layout ----------------------------------------------------------------------------------------


def test_nested_layout_puts_each_key_part_in_a_directory(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a"]))
        SystemTableStorage(store).push_graph_snapshot()
        assert store.list_features() == [mx.FeatureKey("media/clips/raw")]
    assert _table_dirs(tmp_path) == {"media/clips/raw.delta", "metaxy-system/feature_versions.delta"}
    assert (tmp_path / "media/clips/raw.delta/_delta_log").is_dir()
    assert store.table_uri(clip) == str(tmp_path / "media" / "clips" / "raw.delta")


def test_flat_layout_uses_the_table_name(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path, layout="flat")
    with store.open("w"):
        store.write(clip, samples(["a"]))
        SystemTableStorage(store).push_graph_snapshot()
        assert store.list_features() == [mx.FeatureKey("media/clips/raw")]
    assert _table_dirs(tmp_path) == {"media__clips__raw.delta", "metaxy_system__feature_versions.delta"}


def test_list_features_ignores_directories_that_are_not_delta_tables(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    (tmp_path / "media" / "clips" / "other.delta").mkdir(parents=True)  # no _delta_log
    (tmp_path / "notes").mkdir()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        assert store.list_features() == []
        store.write(clip, samples(["a"]))
        assert store.list_features() == [mx.FeatureKey("media/clips/raw")]


def test_a_relative_root_is_resolved_when_the_store_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = DeltaMetadataStore("data/metaxy")
    assert store.root_path == str(tmp_path / "data" / "metaxy")
    assert "root_path=" in store.display()


def test_bad_layout_and_reserved_write_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layout='nested'"):
        DeltaMetadataStore(tmp_path, layout="deep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\['mode'\]"):
        DeltaMetadataStore(tmp_path, delta_write_options={"mode": "overwrite"})


def test_file_uri_root_reads_lists_and_drops(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    """A URI root goes through the URI code path (string joins, pyarrow filesystem listing)."""
    clip = _clip()
    store = DeltaMetadataStore(tmp_path.as_uri())
    with store.open("w"):
        store.write(clip, samples(["a", "b"]))
        assert id_set(store.read(clip)) == {"a", "b"}
        assert store.list_features() == [mx.FeatureKey("media/clips/raw")]
        store.drop_feature_metadata(clip)
        assert store.list_features() == []
        assert not store.has_feature(clip)
    assert store.table_uri(clip) == f"{tmp_path.as_uri()}/media/clips/raw.delta"
    assert not (tmp_path / "media" / "clips" / "raw.delta").exists()


def test_object_store_listing_uses_the_storage_options(tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    from metaxy.metadata_store.delta import _arrow_filesystem

    options = {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://localhost:9000",
        "AWS_ALLOW_HTTP": "true",
    }
    fs, path = _arrow_filesystem("s3://bucket/metaxy", options)
    expected = pafs.S3FileSystem(
        access_key="key",
        secret_key="secret",
        region="eu-west-1",
        endpoint_override="http://localhost:9000",
        scheme="http",
    )
    assert (fs.equals(expected), path) == (True, "bucket/metaxy")


def test_an_unsupported_uri_scheme_is_a_capability_error(graph: mx.FeatureGraph) -> None:
    store = DeltaMetadataStore("nosuchscheme://bucket/metaxy")
    with store, pytest.raises(StoreCapabilityError, match=r"nosuchscheme://bucket/metaxy.*Hint:"):
        store.list_features()


# --- types and schema --------------------------------------------------------------------------------


def test_struct_and_timestamp_columns_round_trip(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    vf = define_video_features()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(vf.video, samples(["a", "b"], ["audio", "frames"]))
        df = collect_to_polars(store.read(vf.video))
    assert df.schema[PROVENANCE_BY_FIELD] == pl.Struct({"audio": pl.String, "frames": pl.String})
    assert df.schema[UPDATED_AT] == pl.Datetime("us", "UTC")
    assert df.schema[DELETED_AT] == pl.Datetime("us", "UTC")
    assert {r["sample_id"]: r[PROVENANCE_BY_FIELD]["audio"] for r in df.to_dicts()} == {
        "a": "audio:a:v1",
        "b": "audio:b:v1",
    }


def test_types_delta_lacks_are_stored_as_their_closest_type_and_can_be_written_again(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    frame = samples(["a", "b"]).with_columns(
        label=pl.Series(["x", "y"], dtype=pl.Categorical),
        count=pl.Series([1, 2], dtype=pl.UInt32),
        seen=pl.Series([datetime(2024, 1, 1, tzinfo=UTC)] * 2, dtype=pl.Datetime("ns", "Europe/Berlin")),
        note=pl.lit(None),
    )
    with store.open("w"):
        store.write(clip, frame)
        store.write(clip, frame.with_columns(note=pl.lit(None)))  # still Null-typed: takes the stored type
        df = collect_to_polars(store.read(clip, with_sample_history=True))
    assert df.height == 4
    assert df.schema["label"] == pl.String
    assert df.schema["count"] == pl.Int64
    assert df.schema["seen"] == pl.Datetime("us", "UTC")
    assert df.schema["note"] == pl.String
    assert set(df["seen"].to_list()) == {datetime(2024, 1, 1, tzinfo=UTC)}


def test_a_type_delta_cannot_store_is_rejected_before_writing(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        with pytest.raises(MetadataSchemaError, match=r"'took'.*Hint:"):
            store.write(clip, samples(["a"]).with_columns(took=pl.duration(seconds=1)))
        assert not store.has_feature(clip)


def test_a_later_write_with_new_columns_merges_the_schema(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a"]))
        store.write(clip, samples(["b"], score=[0.5]))
        got = {r["sample_id"]: r["score"] for r in rows(store.read(clip), ["sample_id", "score"])}
    assert got == {"a": None, "b": 0.5}


def test_reads_are_lazy_scans_with_the_version_filter_pushed_down(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a"]))
        native = store.read(clip).to_native()
    assert isinstance(native, pl.LazyFrame)
    plan = native.explain()
    scan = plan[plan.index("SCAN") :]
    assert "SELECTION" in scan
    assert f'col("{FEATURE_VERSION}")' in scan[scan.index("SELECTION") :]


# --- deletes and drop ------------------------------------------------------------------------------


def test_hard_delete_rewrites_the_table_without_the_rows(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a", "b", "c"]))
        assert store.delete(clip, "sample_id = 'b'", soft=False) == 1
        assert store.delete(clip, "sample_id = 'zzz'", soft=False) == 0
        assert id_set(store.read(clip, with_sample_history=True, include_soft_deleted=True)) == {"a", "c"}
        assert store.delete(clip, None, soft=False) == 2
        assert store.has_feature(clip)
        empty = collect_to_polars(store.read(clip))
        assert empty.height == 0
        assert PROVENANCE_BY_FIELD in empty.columns
        store.write(clip, samples(["d"]))
        assert id_set(store.read(clip)) == {"d"}


def test_soft_delete_hides_rows_and_a_later_write_revives_them(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a", "b"]))
        assert store.delete(clip, "sample_id = 'a'") == 1
        assert id_set(store.read(clip)) == {"b"}
        assert id_set(store.read(clip, include_soft_deleted=True)) == {"a", "b"}
        store.write(clip, samples(["a"], tag="v2"))
        assert id_set(store.read(clip)) == {"a", "b"}


def test_drop_removes_the_table_directory(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a"]))
        store.drop_feature_metadata(clip)
        assert not store.has_feature(clip)
        with pytest.raises(FeatureNotFoundError):
            store.read(clip)
    assert not (tmp_path / "media" / "clips" / "raw.delta").exists()


# --- resolve, system tables, fallbacks -----------------------------------------------------------


def test_resolve_update_reports_new_stale_and_orphaned(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    vf = define_video_features()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write(vf.video, samples(["a", "b", "c"], ["audio", "frames"]))
        store.write(vf.transcript, store.resolve_update(vf.transcript).new.to_polars())
        store.write(vf.video, samples(["a"], ["audio", "frames"], tag="v2"))  # a: stale
        store.write(vf.video, samples(["d"], ["audio", "frames"]))  # d: new
        store.delete(vf.video, "sample_id = 'c'", soft=False)  # c: orphaned
        inc = store.resolve_update(vf.transcript)
    assert (id_set(inc.new), id_set(inc.stale), id_set(inc.orphaned)) == ({"d"}, {"a"}, {"c"})


def test_system_tables_push_is_idempotent(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    define_video_features()
    store = DeltaMetadataStore(tmp_path)
    with store.open("w"):
        first = SystemTableStorage(store).push_graph_snapshot()
    with store:  # a fresh open reads the snapshot back from the Delta log
        snapshots = SystemTableStorage(store).read_graph_snapshots()
    with store.open("w"):
        again = SystemTableStorage(store).push_graph_snapshot()
    assert not first.already_pushed
    assert again.already_pushed
    assert snapshots.height == 1
    assert snapshots.row(0, named=True)["feature_count"] == 3


@pytest.mark.parametrize("delta_is_primary", [True, False])
def test_fallback_between_delta_and_memory_stores(
    tmp_path: Path, graph: mx.FeatureGraph, delta_is_primary: bool
) -> None:
    vf = define_video_features()
    upstream: mx.MetadataStore
    if delta_is_primary:
        upstream = InMemoryMetadataStore()
        primary: mx.MetadataStore = DeltaMetadataStore(tmp_path, fallback_stores=[upstream])
    else:
        upstream = DeltaMetadataStore(tmp_path)
        primary = InMemoryMetadataStore(fallback_stores=[upstream])
    with upstream.open("w"):
        upstream.write(vf.video, samples(["a", "b"], ["audio", "frames"]))
    with primary.open("w"):
        frame, found_in = primary.read(vf.video, with_store_info=True)
        assert found_in is upstream
        assert id_set(frame) == {"a", "b"}
        inc = primary.resolve_update(vf.transcript)
        assert id_set(inc.new) == {"a", "b"}
        primary.write(vf.transcript, inc.new.to_polars())
        assert primary.has_feature(vf.transcript)
        assert not primary.has_feature(vf.video)


# --- pickling and configuration ------------------------------------------------------------------


def test_a_pickled_store_reads_the_same_data(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = DeltaMetadataStore(tmp_path, layout="flat", storage_options={"timeout": "30s"}, name="lake")
    with store.open("w"):
        store.write(clip, samples(["a", "b"]))
        copy = pickle.loads(pickle.dumps(store))
    assert (copy.root_path, copy.layout, copy.storage_options, copy.name) == (
        store.root_path,
        "flat",
        {"timeout": "30s"},
        "lake",
    )
    with copy:
        assert id_set(copy.read(clip)) == {"a", "b"}


def test_store_is_built_from_metaxy_toml(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    config_file = tmp_path / "metaxy.toml"
    config_file.write_text(
        f"""
store = "lake"

[stores.lake]
type = "{DELTA_TYPE}"

[stores.lake.config]
root_path = "{(tmp_path / "lake").as_posix()}"
layout = "flat"
hash_algorithm = "xxhash64"
"""
    )
    config = MetaxyConfig.load(config_file)
    store = config.get_store("lake")
    assert isinstance(store, DeltaMetadataStore)
    assert (store.layout, store.hash_algorithm.value) == ("flat", "xxhash64")
    with store.open("w"):
        store.write(clip, samples(["a"]))
    assert (tmp_path / "lake" / "media__clips__raw.delta").is_dir()


def test_store_is_built_from_a_config_object_via_the_documented_import_path(tmp_path: Path) -> None:
    config = MetaxyConfig(stores={"x": {"type": DELTA_TYPE, "config": {"root_path": str(tmp_path)}}})
    store = config.get_store("x")
    assert isinstance(store, DeltaMetadataStore)
    assert store.root_path == str(tmp_path)
    assert DeltaMetadataStore.config_model() is DeltaMetadataStoreConfig


def test_importing_the_store_modules_does_not_import_deltalake() -> None:
    code = (
        "import sys, metaxy, metaxy.ext.polars, metaxy.ext.polars.handlers.delta; "
        "assert 'deltalake' not in sys.modules, 'deltalake was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_deltalake_names_the_extra(
    tmp_path: Path, graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "deltalake", None)
    store = DeltaMetadataStore(tmp_path)
    with pytest.raises(ImportError, match=r"pip install 'metaxy\[delta\]'"), store.open("r"):
        pass


# --- concurrent and killed writers ---------------------------------------------------------------

N_WRITERS = 4
APPENDS_PER_WRITER = 50


def _counter_feature() -> type[mx.BaseFeature]:
    class Counter(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="concurrency/counter", id_columns=["writer", "seq"], fields=["default"]),
    ):
        writer: int
        seq: int

    return Counter


def _append_rows(root: str, writer: int, start: Any) -> None:
    """One writer process: its own store on the shared root, one-row appends."""
    with mx.FeatureGraph().use():
        feature = _counter_feature()
        store = DeltaMetadataStore(root)
        start.wait()
        with store.open("w"):
            for seq in range(APPENDS_PER_WRITER):
                frame = pl.DataFrame({"writer": [writer], "seq": [seq], PROVENANCE_BY_FIELD: [{"default": "h"}]})
                store.write(feature, frame)


def test_concurrent_writer_processes_lose_no_rows(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    run_together(_append_rows, [(str(tmp_path), w) for w in range(N_WRITERS)], timeout=120)
    feature = _counter_feature()
    with DeltaMetadataStore(tmp_path) as store:
        df = collect_to_polars(store.read(feature, with_sample_history=True))
    assert df.height == N_WRITERS * APPENDS_PER_WRITER
    assert df.select("writer", "seq").n_unique() == N_WRITERS * APPENDS_PER_WRITER


def test_hard_deletes_racing_appends_from_another_process_lose_no_appended_rows(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    """A hard delete rewrites the table; rows another process appends meanwhile must survive."""
    feature = _counter_feature()
    store = DeltaMetadataStore(tmp_path)
    doomed = pl.DataFrame({"writer": [-1] * 20, "seq": list(range(20)), PROVENANCE_BY_FIELD: [{"default": "h"}] * 20})
    with store.open("w"):
        store.write(feature, doomed)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    writer = ctx.Process(target=_append_rows, args=(str(tmp_path), 7, start))
    writer.start()
    start.wait()
    with store.open("w"):
        deleted = sum(store.delete(feature, f"writer = -1 AND seq = {i}", soft=False) for i in range(20))
    writer.join(timeout=120)
    assert writer.exitcode == 0
    with store:
        df = collect_to_polars(store.read(feature, with_sample_history=True))
    assert deleted == 20
    assert sorted(df.filter(pl.col("writer") == 7)["seq"].to_list()) == list(range(APPENDS_PER_WRITER))
    assert df.filter(pl.col("writer") == -1).height == 0


def _big_feature() -> type[mx.BaseFeature]:
    class Big(mx.BaseFeature, spec=mx.FeatureSpec(key="big", id_columns=["sample_id"], fields=["default"])):
        sample_id: int

    return Big


BATCH_ROWS = 50_000


def _endless_frame(started: Any) -> pl.LazyFrame:
    """A lazy frame whose source yields 20 batches, signals ``started``, then never finishes."""
    from polars.io.plugins import register_io_source

    schema = {"sample_id": pl.Int64, "payload": pl.String}

    def source(with_columns: Any, predicate: Any, n_rows: Any, batch_size: Any) -> Iterator[pl.DataFrame]:
        for i in range(10_000):
            if i == 20:
                started.set()
            if i >= 20:
                threading.Event().wait()  # hang mid-write until killed
            ids = pl.int_range(i * BATCH_ROWS, (i + 1) * BATCH_ROWS, eager=True).alias("sample_id")
            df = pl.DataFrame([ids]).with_columns(
                payload=pl.lit("x" * 100),
                **{PROVENANCE_BY_FIELD: pl.struct(default=pl.col("sample_id").cast(pl.String))},
            )
            yield df.select(with_columns) if with_columns is not None else df

    schema[PROVENANCE_BY_FIELD] = pl.Struct({"default": pl.String})  # type: ignore[assignment]
    return register_io_source(source, schema=schema)


def _write_forever(root: str, started: Any) -> None:
    with mx.FeatureGraph().use():
        feature = _big_feature()
        store = DeltaMetadataStore(root, delta_write_options={"target_file_size": 256 * 1024})
        with store.open("w"):
            store.write(feature, _endless_frame(started))


def test_a_killed_writer_leaves_no_partial_rows(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    feature = _big_feature()
    store = DeltaMetadataStore(tmp_path)
    seed = pl.DataFrame({"sample_id": [-1, -2], PROVENANCE_BY_FIELD: [{"default": "s"}] * 2})
    with store.open("w"):
        store.write(feature, seed)
    table_dir = Path(store.table_uri(feature))
    files_before = set(table_dir.glob("*.parquet"))

    ctx = mp.get_context("spawn")
    started = ctx.Event()
    writer = ctx.Process(target=_write_forever, args=(str(tmp_path), started))
    writer.start()
    try:
        assert started.wait(timeout=60), "the writer never got going"
        deadline = time.monotonic() + 30
        while not set(table_dir.glob("*.parquet")) - files_before and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.kill()
        writer.join(timeout=30)
    assert writer.exitcode == -9

    assert set(table_dir.glob("*.parquet")) - files_before, "the killed write had put no data files on disk"
    with store.open("w"):
        assert id_set(store.read(feature, with_sample_history=True)) == {-1, -2}
        store.write(feature, seed.with_columns(pl.col("sample_id") - 10))  # the table still takes writes
        assert id_set(store.read(feature)) == {-1, -2, -11, -12}


def test_a_missing_data_file_is_a_typed_error_naming_it(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    from metaxy.errors import BackendError

    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="gone/raw", id_columns=["video_id"], fields=["audio"])):
        video_id: str

    store = DeltaMetadataStore(tmp_path / "root")
    frame = pl.DataFrame({"video_id": ["a"], "metaxy_provenance_by_field": [{"audio": "1"}]})
    with store.open("w"):
        store.write(Raw, frame)
    (data_file,) = (tmp_path / "root").rglob("*.parquet")
    data_file.unlink()
    with store.open("w"):
        for call in (
            lambda: store.read(Raw),
            lambda: store.write(Raw, frame),
            lambda: store.resolve_update(Raw, samples=frame),
        ):
            with pytest.raises(BackendError, match=rf"missing 1 data file.*{data_file.name}.*repair"):
                call()


def test_a_deltalake_call_waits_for_an_append_in_flight(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    """deltalake pulls an append's batches on its runtime threads (each takes the GIL) while some of
    its calls wait on that runtime holding the GIL: run together, they deadlock (every thread parked,
    seen once in the threaded-writers trust test). The store runs one deltalake call at a time: an
    existence check from another thread waits until the append has committed."""
    vf = define_video_features()
    store = DeltaMetadataStore(tmp_path / "delta", auto_create_tables=True)
    pulled, release = threading.Event(), threading.Event()

    def held(s: pl.Series) -> pl.Series:  # runs inside the append, on a deltalake runtime thread
        pulled.set()
        release.wait(60)
        return s

    rows_ = samples(["a"], ["audio", "frames"]).lazy()
    blocking = rows_.with_columns(pl.col("sample_id").map_batches(held, return_dtype=pl.String))
    checked: list[bool] = []

    def write() -> None:
        with graph.use(), store.open("w"):
            store.write(vf.video, blocking)

    def check() -> None:
        with graph.use(), store.open("r"):
            checked.append(store.has_feature(vf.video))

    with store.open("w"):
        store.write(vf.video, samples(["seed"], ["audio", "frames"]))
    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert pulled.wait(60), "the append never pulled its batches"
        checker = threading.Thread(target=check)
        checker.start()
        checker.join(1.0)
        assert checker.is_alive() and checked == [], "the check ran beside the append"
    finally:
        release.set()
    writer.join(60)
    checker.join(60)
    assert checked == [True]
    with store.open("r"):
        assert id_set(store.read(vf.video)) == {"seed", "a"}
