"""``DeltaMetadataStore`` on S3 (moto's server on 127.0.0.1): concurrent writer processes,
a killed writer and ``vacuum``, lazy scans, and credentials that never show."""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

import boto3
import polars as pl
import pytest
from test_delta_store import _big_feature, _counter_feature, _endless_frame

import metaxy as mx
from metaxy.errors import BackendError
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
from metaxy.frames import collect_to_polars
from metaxy.models.constants import FEATURE_VERSION, PROVENANCE_BY_FIELD
from metaxy.testing.conformance_support import id_set
from metaxy.testing.processes import run_together
from metaxy.testing.s3 import S3Server

# Fewer commits than the local test: each S3 commit is several round trips to a serialised server.
N_WRITERS = 3
APPENDS_PER_WRITER = 8


def _s3_keys(server: S3Server, prefix: str) -> set[str]:
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name=server.region,
    )
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def _parquet_keys(server: S3Server, table_uri: str) -> set[str]:
    prefix = table_uri.removeprefix(f"s3://{server.bucket}/") + "/"
    return {k for k in _s3_keys(server, prefix) if k.endswith(".parquet")}


def _append_rows(root: str, options: dict[str, str], writer: int, start: Any) -> None:
    with mx.FeatureGraph().use():
        feature = _counter_feature()
        store = DeltaMetadataStore(root, storage_options=options)
        start.wait()
        with store.open("w"):
            for seq in range(APPENDS_PER_WRITER):
                frame = pl.DataFrame({"writer": [writer], "seq": [seq], PROVENANCE_BY_FIELD: [{"default": "h"}]})
                store.write(feature, frame)


def test_concurrent_writer_processes_on_s3_lose_no_rows(s3_server: S3Server, graph: mx.FeatureGraph) -> None:
    root = s3_server.url()
    run_together(_append_rows, [(root, s3_server.storage_options, w) for w in range(N_WRITERS)])
    with DeltaMetadataStore(root, storage_options=s3_server.storage_options) as store:
        df = collect_to_polars(store.read(_counter_feature(), with_sample_history=True))
    assert df.height == N_WRITERS * APPENDS_PER_WRITER
    assert df.select("writer", "seq").n_unique() == N_WRITERS * APPENDS_PER_WRITER


def _write_forever(root: str, options: dict[str, str], started: Any) -> None:
    with mx.FeatureGraph().use():
        feature = _big_feature()
        store = DeltaMetadataStore(root, storage_options=options, delta_write_options={"target_file_size": 256 * 1024})
        with store.open("w"):
            store.write(feature, _endless_frame(started))


def test_a_killed_writer_on_s3_leaves_no_rows_and_vacuum_removes_its_files(
    s3_server: S3Server, graph: mx.FeatureGraph
) -> None:
    feature = _big_feature()
    root = s3_server.url()
    store = DeltaMetadataStore(root, storage_options=s3_server.storage_options)
    seed = pl.DataFrame({"sample_id": [-1, -2], PROVENANCE_BY_FIELD: [{"default": "s"}] * 2})
    with store.open("w"):
        store.write(feature, seed)
    table = store.table_uri(feature)
    files_before = _parquet_keys(s3_server, table)

    ctx = mp.get_context("spawn")
    started = ctx.Event()
    writer = ctx.Process(target=_write_forever, args=(root, s3_server.storage_options, started))
    writer.start()
    try:
        assert started.wait(timeout=120), "the writer never got going"
        deadline = time.monotonic() + 60
        while not _parquet_keys(s3_server, table) - files_before and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        writer.kill()
        writer.join(timeout=30)
    assert writer.exitcode == -9
    orphans = _parquet_keys(s3_server, table) - files_before
    assert orphans, "the killed write had put no data files in the bucket"

    with store.open("w"):
        assert id_set(store.read(feature, with_sample_history=True)) == {-1, -2}
        assert store.vacuum(feature, dry_run=True) == []  # younger than the default retention: kept
        removed = store.vacuum(feature, retention_hours=0)
        assert {r.rsplit("/", 1)[-1] for r in removed} == {o.rsplit("/", 1)[-1] for o in orphans}
        assert _parquet_keys(s3_server, table) == files_before
        assert id_set(store.read(feature)) == {-1, -2}
        store.write(feature, seed.with_columns(pl.col("sample_id") - 10))
        assert id_set(store.read(feature)) == {-1, -2, -11, -12}


def test_vacuum_rejects_a_negative_retention(s3_server: S3Server, graph: mx.FeatureGraph) -> None:
    store = DeltaMetadataStore(s3_server.url(), storage_options=s3_server.storage_options)
    with pytest.raises(ValueError, match="retention_hours=-1"):
        store.vacuum(retention_hours=-1)


def test_reads_on_s3_are_lazy_scans_with_the_version_filter_pushed_down(
    s3_server: S3Server, graph: mx.FeatureGraph
) -> None:
    feature = _counter_feature()
    store = DeltaMetadataStore(s3_server.url(), storage_options=s3_server.storage_options)
    frame = pl.DataFrame({"writer": [1, 2, 3], "seq": [0, 0, 0], PROVENANCE_BY_FIELD: [{"default": "h"}] * 3})
    with store.open("w"):
        store.write(feature, frame)
        native = store.read(feature).to_native()
        assert isinstance(native, pl.LazyFrame)
        plan = native.explain()
        scan = plan[plan.index("SCAN") :]
        assert f'col("{FEATURE_VERSION}")' in scan[scan.index("SELECTION") :]
        assert sorted(native.collect()["writer"].to_list()) == [1, 2, 3]


def test_the_secret_never_shows_in_display_repr_or_errors(s3_server: S3Server, graph: mx.FeatureGraph) -> None:
    secret = s3_server.secret_access_key
    store = DeltaMetadataStore(s3_server.url(), storage_options=s3_server.storage_options, name="lake")
    assert secret not in repr(store) and secret not in str(store) and secret not in store.display()
    # A bucket that does not exist: the server answers at once (an unreachable endpoint is retried for minutes).
    broken = DeltaMetadataStore("s3://no-such-bucket/x", storage_options=s3_server.storage_options, name="lake")
    feature = _counter_feature()
    frame = pl.DataFrame({"writer": [1], "seq": [0], PROVENANCE_BY_FIELD: [{"default": "h"}]})
    with pytest.raises(BackendError) as info, broken.open("w"):
        broken.write(feature, frame)
    assert secret not in str(info.value)
