"""Quarantine across executors: DuckDB's native SQL resolve and the Polars engine give the same
split, a lazy DuckDB increment stays DuckDB relations, and without failures the resolve is untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.frames import collect_to_polars as to_polars
from metaxy.testing.conformance_support import define_video_features

pytestmark = pytest.mark.filterwarnings("ignore:Creating table", "ignore:Resolving")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with MetaxyConfig(hash_truncation_length=8, project=None).use(), mx.FeatureGraph().use():
        yield DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)


def _video(ids: list[str], tag: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"sample_id": ids, "metaxy_provenance_by_field": [{"audio": f"a{i}{tag}", "frames": f"f{i}"} for i in ids]}
    )


def _frame(frame: Any) -> list[dict[str, Any]]:
    return to_polars(frame).drop("metaxy_failed_at", strict=False).sort("sample_id").to_dicts()


def test_native_and_polars_engines_split_alike(store: Any) -> None:
    ids = [f"s{i:02d}" for i in range(20)]
    with store.open("w"):
        vf = define_video_features()
        store.write(vf.video, _video(ids, "1"))
        store.write(vf.transcript, to_polars(store.resolve_update(vf.transcript).new).sort("sample_id").head(10))
        store.write(vf.video, _video(ids[:5], "2"))  # s00..s04 stale, s10..s19 new
        store.record_failures(vf.transcript, pl.DataFrame({"sample_id": ["s01", "s12"], "error": ["x", "y"]}))
        native = store.resolve_update(vf.transcript, versioning_engine="native")
        polars = store.resolve_update(vf.transcript, versioning_engine="polars")
        lazy = store.resolve_update(vf.transcript, versioning_engine="native", lazy=True)
        for part in ("new", "stale", "failed", "orphaned"):
            assert _frame(getattr(native, part)) == _frame(getattr(polars, part)), part
            assert _frame(getattr(lazy, part)) == _frame(getattr(native, part)), part
        assert {r["sample_id"] for r in _frame(native.failed)} == {"s01", "s12"}
        assert type(lazy.new.to_native()).__name__ == "DuckDBPyRelation"
        assert type(lazy.failed.to_native()).__name__ == "DuckDBPyRelation"


def test_without_failures_the_resolve_is_returned_untouched(store: Any) -> None:
    with store.open("w"):
        vf = define_video_features()
        store.write(vf.video, _video(["a", "b"], "1"))
        plain = store.resolve_update(vf.transcript, lazy=True)
        assert type(plain).__name__ == "_DuckDBLazyIncrement"  # the native single-statement increment
        assert to_polars(plain.failed).height == 0
        assert set(to_polars(plain.new).columns) < set(to_polars(plain.failed).columns)
        store.record_failures(vf.transcript, pl.DataFrame({"sample_id": ["a"], "error": ["x"]}))
        store.reset_failures(vf.transcript)
        assert vf.transcript.spec().key not in store.features_with_failures()
        assert type(store.resolve_update(vf.transcript, lazy=True)).__name__ == "_DuckDBLazyIncrement"
