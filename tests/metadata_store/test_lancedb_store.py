"""``LanceDBMetadataStore``: concurrent writer processes and a killed writer on S3 (moto), vacuum,
lazy scans, Map/struct columns, configuration, and credentials that never show."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_delta_s3_store import _s3_keys
from test_delta_store import _counter_feature

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.errors import BackendError, FeatureNotFoundError, MetadataSchemaError
from metaxy.ext.lancedb import LanceDBMetadataStore, _glibc_version
from metaxy.frames import collect_to_polars
from metaxy.models.constants import PROVENANCE_BY_FIELD
from metaxy.testing.conformance_support import define_video_features, id_set, samples
from metaxy.testing.processes import run_together
from metaxy.testing.s3 import S3Server

N_WRITERS = 2
APPENDS_PER_WRITER = 3


def _data_keys(server: S3Server, uri: str, table: str) -> set[str]:
    prefix = uri.removeprefix(f"s3://{server.bucket}/") + f"/{table}.lance/data/"
    return _s3_keys(server, prefix)


def _append_rows(uri: str, options: dict[str, str], writer: int, start: Any) -> None:
    with mx.FeatureGraph().use():
        feature = _counter_feature()
        store = LanceDBMetadataStore(uri, storage_options=options)
        start.wait()
        with store.open("w"):
            for seq in range(APPENDS_PER_WRITER):
                frame = pl.DataFrame({"writer": [writer], "seq": [seq], PROVENANCE_BY_FIELD: [{"default": "h"}]})
                store.write(feature, frame)


def test_concurrent_writer_processes_on_s3_lose_no_rows(s3_server: S3Server, graph: mx.FeatureGraph) -> None:
    uri = s3_server.url()
    run_together(_append_rows, [(uri, s3_server.lance_storage_options, w) for w in range(N_WRITERS)])
    with LanceDBMetadataStore(uri, storage_options=s3_server.lance_storage_options) as store:
        df = collect_to_polars(store.read(_counter_feature(), with_sample_history=True))
    assert df.height == N_WRITERS * APPENDS_PER_WRITER
    assert df.select("writer", "seq").n_unique() == N_WRITERS * APPENDS_PER_WRITER


def test_the_secret_never_shows_in_display_repr_or_errors(s3_server: S3Server, graph: mx.FeatureGraph) -> None:
    secret = s3_server.secret_access_key
    options = s3_server.lance_storage_options
    store = LanceDBMetadataStore(s3_server.url(), storage_options=options, name="lance")
    assert secret not in repr(store) and secret not in str(store) and secret not in store.display()
    broken = LanceDBMetadataStore("s3://no-such-bucket/x", storage_options=options, name="lance")
    feature = _counter_feature()
    frame = pl.DataFrame({"writer": [1], "seq": [0], PROVENANCE_BY_FIELD: [{"default": "h"}]})
    with pytest.raises(BackendError) as info, broken.open("w"):
        broken.write(feature, frame)
    assert secret not in str(info.value)


def test_reads_are_lazy_scans_of_the_lance_dataset(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    feature = _counter_feature()
    store = LanceDBMetadataStore(tmp_path / "db")
    frame = pl.DataFrame({"writer": [1, 2, 3], "seq": [0, 0, 0], PROVENANCE_BY_FIELD: [{"default": "h"}] * 3})
    with store.open("w"):
        store.write(feature, frame)
        native = store.read(feature, filters=["writer > 1"]).to_native()
        assert isinstance(native, pl.LazyFrame)
        assert "lance_scan" in native.explain()
        assert sorted(native.collect()["writer"].to_list()) == [2, 3]
        assert store.location_uri(feature) == str(tmp_path / "db" / "concurrency__counter.lance")


def test_a_resolve_reads_each_table_once(
    tmp_path: Path, graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A latest-row read uses its scan in two branches; the cached scan reads the table once."""
    import lance

    vf = define_video_features()
    store = LanceDBMetadataStore(tmp_path / "db", auto_create_tables=True)
    with store.open("w"):
        store.write(vf.video, samples(["a", "b", "c"], ["audio", "frames"]))
        store.write(vf.transcript, store.resolve_update(vf.transcript).new)
        store.write(vf.video, samples(["a"], ["audio", "frames"], tag="v2"))
        reads: list[str] = []
        to_batches = lance.LanceDataset.to_batches

        def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
            reads.append(Path(self.uri).name)
            return to_batches(self, *args, **kwargs)

        monkeypatch.setattr(lance.LanceDataset, "to_batches", counting)
        inc = store.resolve_update(vf.transcript)
    assert id_set(inc.stale) == {"a"}
    assert len(reads) == len(set(reads)) == 2, reads


def test_map_and_struct_columns_round_trip(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="clip", id_columns=["sid"], fields=["audio"])):
        sid: str

    tags = pl.Series("tags", [[("k", "v")], []], dtype=pl.List(pl.Struct({"key": pl.String, "value": pl.String})))
    frame = pl.DataFrame(
        {"sid": ["a", "b"], "meta": [{"w": 1, "h": 2}, {"w": 3, "h": 4}], PROVENANCE_BY_FIELD: [{"audio": "x"}] * 2}
    ).with_columns(tags.cast(pl.Map(pl.String, pl.String)))
    store = LanceDBMetadataStore(tmp_path / "db")
    with store.open("w"):
        store.write(Clip, frame)
        back = collect_to_polars(store.read(Clip)).sort("sid")
    assert back.schema["tags"] == pl.Map(pl.String, pl.String)
    assert back["meta"].to_list() == [{"w": 1, "h": 2}, {"w": 3, "h": 4}]
    assert back["tags"].cast(pl.List(pl.Struct({"key": pl.String, "value": pl.String}))).to_list() == [
        [{"key": "k", "value": "v"}],
        [],
    ]


def test_store_is_built_from_metaxy_toml(tmp_path: Path) -> None:
    (tmp_path / "metaxy.toml").write_text(
        textwrap.dedent(
            f"""
            project = "p"
            [stores.dev]
            type = "metaxy.ext.lancedb.LanceDBMetadataStore"
            [stores.dev.config]
            uri = "{tmp_path / "db"}"
            storage_options = {{ aws_secret_access_key = "hunter2-secret" }}
            """
        )
    )
    cfg = MetaxyConfig.load(tmp_path / "metaxy.toml")
    store = cfg.get_store("dev")
    assert isinstance(store, LanceDBMetadataStore) and store.uri == str(tmp_path / "db")
    assert "hunter2-secret" not in repr(store) + store.display() + repr(cfg)


class DecoderError(Exception):
    pass


def _failing(frame: pl.DataFrame) -> pl.LazyFrame:
    """``frame`` as a lazy frame whose evaluation raises :class:`DecoderError`."""

    def boom(values: pl.Series) -> pl.Series:
        raise DecoderError("the decoder crashed")

    return frame.lazy().with_columns(pl.col("sample_id").map_batches(boom, return_dtype=pl.String))


def test_a_failed_first_write_leaves_no_feature_and_the_next_write_lands(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    """The bare table a first append creates before its rows is not a feature table for metaxy."""
    vf = define_video_features()
    store = LanceDBMetadataStore(tmp_path / "lance")

    failing = _failing(samples(["a"], ("audio", "frames")))
    with store.open("w"):
        with pytest.raises(DecoderError, match="decoder crashed"):
            store.write(vf.video, failing)
        assert store._lance_table(store._table(vf.video.spec().key)) is not None  # the bare table is on disk
        assert not store.has_feature(vf.video)
        assert store.list_features() == []
        with pytest.raises(FeatureNotFoundError):
            store.read(vf.video)
        store.write(vf.video, samples(["b", "c"], ("audio", "frames")))
        assert id_set(store.read(vf.video)) == {"b", "c"}
        assert store.list_features() == [vf.video.spec().key]


def test_an_empty_first_write_makes_an_empty_feature_table(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    vf = define_video_features()
    with LanceDBMetadataStore(tmp_path / "lance").open("w") as store:
        store.write(vf.video, samples([], ("audio", "frames")))
        assert store.has_feature(vf.video)
        assert id_set(store.read(vf.video)) == set()


def test_after_a_failed_first_write_other_column_types_get_a_typed_error_and_drop_recovers(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    """The hidden table keeps the failed write's columns: a write with other types for them is a
    schema error naming the way out, and ``drop_feature_metadata`` removes the hidden table."""
    vf = define_video_features()
    store = LanceDBMetadataStore(tmp_path / "lance")

    first = samples(["a"], ("audio", "frames"), extra=[1])
    with store.open("w"):
        with pytest.raises(DecoderError):
            store.write(vf.video, _failing(first))
        with pytest.raises(MetadataSchemaError, match="drop_feature_metadata"):
            store.write(vf.video, samples(["b"], ("audio", "frames"), extra=["text"]))
        assert not store.has_feature(vf.video)
        store.drop_feature_metadata(vf.video)
        assert store._lance_table(store._table(vf.video.spec().key)) is None
        store.write(vf.video, samples(["b"], ("audio", "frames"), extra=["text"]))
        assert collect_to_polars(store.read(vf.video))["extra"].to_list() == ["text"]


# A 4 MiB block allocated, freed and allocated again: glibc's dynamic mmap threshold rises past it at
# the first free, so the second comes from a heap (and its pages stay resident after the free),
# unless the threshold is pinned; then it is mapped again. Printed: whether it was (the IS_MMAPPED
# bit of the chunk's size field) and the knobs the store pinned.
_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from metaxy.ext import lancedb

    if sys.argv[2] == "open":
        with lancedb.LanceDBMetadataStore(sys.argv[1]).open("w"):
            pass
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(libc.malloc(4 << 20))
    block = libc.malloc(4 << 20)
    print(bool(ctypes.c_size_t.from_address(block - 8).value & 2), sorted(lancedb._glibc_malloc_pinned or {}))
    libc.free(block)
    """
)


@pytest.mark.skipif(_glibc_version() is None, reason="glibc's allocator only")
@pytest.mark.parametrize(
    ("step", "env", "expected"),
    [
        pytest.param("none", {}, "False []", id="glibc-alone-keeps-the-block-on-a-heap"),
        pytest.param(
            "open", {}, "True ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']", id="store-open-pins-both"
        ),
        pytest.param(
            "open", {"MALLOC_MMAP_THRESHOLD_": str(64 << 20)}, "False ['MALLOC_TRIM_THRESHOLD_']", id="user-env-wins"
        ),
        pytest.param("open", {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "False []", id="user-tunables-win"),
    ],
)
def test_opening_a_store_pins_glibcs_mmap_threshold_unless_the_user_set_it(
    tmp_path: Path, step: str, env: dict[str, str], expected: str
) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "db"), step],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **env},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
