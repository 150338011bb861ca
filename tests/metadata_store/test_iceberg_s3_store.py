"""``IcebergMetadataStore`` on S3 (moto's server on 127.0.0.1, SQLite catalog on local disk):
concurrent writer processes, a killed writer, lazy scans, and credentials that never show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from test_delta_store import _big_feature, _counter_feature
from test_iceberg_store import kill_a_writer_mid_stream, run_concurrent_writers, small_data_files

import metaxy as mx
from metaxy.errors import BackendError
from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
from metaxy.models.constants import FEATURE_VERSION, PROVENANCE_BY_FIELD
from metaxy.testing.conformance_support import id_set
from metaxy.testing.s3 import S3Server

# Fewer commits than the local test: each S3 commit is several round trips to a serialised server.
N_WRITERS = 3
APPENDS_PER_WRITER = 8


def _parquet_keys(server: S3Server, root: str) -> set[str]:
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name=server.region,
    )
    prefix = root.removeprefix(f"s3://{server.bucket}/") + "/"
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix):
        keys |= {o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")}
    return keys


def test_concurrent_writer_processes_on_s3_lose_no_rows(
    s3_server: S3Server, tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    df = run_concurrent_writers(
        s3_server.url(), s3_server.iceberg_catalog_properties(tmp_path), N_WRITERS, APPENDS_PER_WRITER
    )
    assert df.height == N_WRITERS * APPENDS_PER_WRITER
    assert df.select("writer", "seq").n_unique() == N_WRITERS * APPENDS_PER_WRITER


def test_a_killed_writer_on_s3_leaves_no_visible_rows(
    s3_server: S3Server, tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    feature = _big_feature()
    root, props = s3_server.url(), s3_server.iceberg_catalog_properties(tmp_path)
    store = IcebergMetadataStore(root, catalog_properties=props)
    seed = pl.DataFrame({"sample_id": [-1, -2], PROVENANCE_BY_FIELD: [{"default": "s"}] * 2})
    with store.open("w"):
        store.write(feature, seed)
        small_data_files(store, feature)
    kill_a_writer_mid_stream(root, props, lambda: _parquet_keys(s3_server, root))
    with store.open("w"):
        assert id_set(store.read(feature, with_sample_history=True)) == {-1, -2}
        store.write(feature, seed.with_columns(pl.col("sample_id") - 10))
        assert id_set(store.read(feature)) == {-1, -2, -11, -12}


def test_reads_on_s3_are_lazy_scans_with_the_version_filter_pushed_down(
    s3_server: S3Server, tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    feature = _counter_feature()
    store = IcebergMetadataStore(s3_server.url(), catalog_properties=s3_server.iceberg_catalog_properties(tmp_path))
    frame = pl.DataFrame({"writer": [1, 2, 3], "seq": [0, 0, 0], PROVENANCE_BY_FIELD: [{"default": "h"}] * 3})
    with store.open("w"):
        store.write(feature, frame)
        native = store.read(feature).to_native()
        assert isinstance(native, pl.LazyFrame)
        plan = native.explain()
        scan = plan[plan.index("SCAN") :]
        assert f'col("{FEATURE_VERSION}")' in scan[scan.index("SELECTION") :]
        assert sorted(native.collect()["writer"].to_list()) == [1, 2, 3]
        assert (store.location_uri(feature) or "").startswith("s3://")


def test_the_secret_never_shows_in_display_repr_or_errors(s3_server: S3Server, tmp_path: Path, graph: Any) -> None:
    secret = s3_server.secret_access_key
    props = s3_server.iceberg_catalog_properties(tmp_path)
    store = IcebergMetadataStore(s3_server.url(), catalog_properties=props, name="lake")
    assert secret not in repr(store) and secret not in str(store) and secret not in store.display()
    # A bucket that does not exist: the server answers at once.
    broken = IcebergMetadataStore("s3://no-such-bucket/x", catalog_properties=props, name="lake")
    feature = _counter_feature()
    frame = pl.DataFrame({"writer": [1], "seq": [0], PROVENANCE_BY_FIELD: [{"default": "h"}]})
    with pytest.raises(BackendError) as info, broken.open("w"):
        broken.write(feature, frame)
    assert secret not in str(info.value)
    assert "Hint:" in str(info.value)
