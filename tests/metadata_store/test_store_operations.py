"""rebase, calculate_input_progress and BufferedMetadataWriter on the in-memory and DuckDB stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import MetadataSchemaError
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.metadata_store import BufferedMetadataWriter, InMemoryMetadataStore, SystemTableStorage

pytestmark = pytest.mark.filterwarnings("ignore:Creating table")

StoreMaker = Callable[[], mx.MetadataStore]


@pytest.fixture(params=["memory", "duckdb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    if request.param == "memory":
        return InMemoryMetadataStore
    return lambda: DuckDBMetadataStore(tmp_path / "s.duckdb", auto_create_tables=True)


def _define(code: str = "1") -> tuple[type[mx.BaseFeature], type[mx.BaseFeature]]:
    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="ops/raw", id_columns=["sid"], fields=["audio"])):
        sid: str

    class Down(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="ops/down", id_columns=["sid"], deps=[Raw], fields=[mx.FieldSpec(key="text", code_version=code)]
        ),
    ):
        sid: str
        score: float

    return Raw, Down


def _raw(ids: list[str], rev: str = "1") -> pl.DataFrame:
    return pl.DataFrame({"sid": ids, "metaxy_provenance_by_field": [{"audio": f"a{i}{rev}"} for i in ids]})


def test_rebase_onto_the_current_version(make_store: StoreMaker) -> None:
    store = make_store()
    g1 = mx.FeatureGraph()
    with g1.use():
        raw, down = _define("1")
        with store.open("w"):
            store.write(raw, _raw(["a", "b"]))
            new = store.resolve_update(down).new.to_polars().with_columns(score=pl.lit(0.5))
            store.write(
                down,
                new.drop("metaxy_data_version").with_columns(  # b carries a user data version
                    metaxy_data_version_by_field=pl.when(pl.col("sid") == "b").then(pl.struct(text=pl.lit("content-b")))
                ),
            )
            SystemTableStorage(store).push_graph_snapshot()
            v1 = down.feature_version()
    g2 = mx.FeatureGraph()
    with g2.use():
        _raw2, down2 = _define("2")
        with store.open("w"):
            old = store.read(down2, with_feature_history=True, feature_version=v1).collect()
            rebased = store.rebase(down2, old).to_polars()
            assert set(rebased["metaxy_feature_version"]) == {down2.feature_version()}
            expected = store.resolve_update(down2).new.to_polars().sort("sid")
            got = rebased.sort("sid")
            assert got["metaxy_provenance"].to_list() == expected["metaxy_provenance"].to_list()
            assert got["score"].to_list() == [0.5, 0.5]
            store.write(down2, rebased, preserve_feature_version=True)
            after = store.resolve_update(down2)
            assert (len(after.new), len(after.stale)) == (0, 0)
            rows = store.read(down2).collect().to_polars().sort("sid")
            # a's data version followed the new provenance; b's user data version was kept
            assert rows["metaxy_data_version_by_field"].to_list()[1] == {"text": "content-b"}
            assert rows["metaxy_data_version"][0] == rows["metaxy_provenance"][0]
        # and back onto the pushed v1 snapshot
        with store.open("r"):
            back = store.rebase(down2, rows, to_feature_version=v1).to_polars()
        assert set(back["metaxy_feature_version"]) == {v1}


def test_rebase_errors(make_store: StoreMaker, graph: mx.FeatureGraph) -> None:
    raw, down = _define()
    store = make_store()
    with store.open("w"):
        store.write(raw, _raw(["a"]))
        with pytest.raises(ValueError, match="Cannot rebase root feature"):
            store.rebase(raw, _raw(["a"]))
        with pytest.raises(ValueError, match="not found in system storage"):
            store.rebase(down, pl.DataFrame({"sid": ["a"], "score": [1.0]}), to_feature_version="deadbeef")


def test_calculate_input_progress(make_store: StoreMaker, graph: mx.FeatureGraph) -> None:
    raw, down = _define()
    store = make_store()
    with store.open("w"):
        store.write(raw, _raw(["a", "b", "c", "d"]))
        assert store.calculate_input_progress(store.resolve_update(down, lazy=True), down) == 0.0
        new = store.resolve_update(down).new.to_polars().filter(pl.col("sid").is_in(["a", "b", "c"]))
        store.write(down, new.with_columns(score=pl.lit(1.0)))
        assert store.calculate_input_progress(store.resolve_update(down, lazy=True), down) == 75.0
        samples = _raw(["x"]).with_columns(score=pl.lit(1.0))
        assert store.calculate_input_progress(store.resolve_update(raw, samples=samples, lazy=True), raw) is None


def test_buffered_writer_batches_and_counts(make_store: StoreMaker, graph: mx.FeatureGraph) -> None:
    raw, _ = _define()
    store = make_store()
    with BufferedMetadataWriter(store, flush_batch_size=3, flush_interval=60) as writer:
        for i in range(7):
            writer.put({raw: _raw([f"s{i}"])})
        writer.flush()
        assert writer.num_written == 7
    assert writer.rows_written == {mx.FeatureKey("ops/raw"): 7}
    with store.open("r"):
        assert len(store.read(raw).collect()) == 7


def test_buffered_writer_errors_resurface(make_store: StoreMaker, graph: mx.FeatureGraph) -> None:
    raw, _ = _define()
    store = make_store()
    writer = BufferedMetadataWriter(store, flush_interval=60)
    with pytest.raises(RuntimeError, match="not started"):
        writer.put({raw: _raw(["a"])})
    writer.start()
    with pytest.raises(RuntimeError, match="already started"):
        writer.start()
    writer.put({raw: pl.DataFrame({"sid": ["a"]})})  # no provenance column: the background write fails
    with pytest.raises(RuntimeError, match="failed in the background") as exc:
        writer.flush()
    assert isinstance(exc.value.__cause__, MetadataSchemaError)
    assert writer.has_error
    with pytest.raises(RuntimeError):
        writer.put({raw: _raw(["b"])})
    with store.open("r"):
        assert not store.has_feature(raw)


def test_buffered_writer_uses_the_graph_of_its_creator(make_store: StoreMaker) -> None:
    store = make_store()
    g = mx.FeatureGraph()
    with g.use():
        _define()
        writer = BufferedMetadataWriter(store, flush_interval=0.05)
    writer.start()  # started outside the graph context: the thread re-activates g
    writer.put({"ops/raw": _raw(["a", "b"])})
    written: dict[Any, int] = writer.stop()
    assert written == {mx.FeatureKey("ops/raw"): 2}


def test_an_upstream_column_named_like_a_failure_column(make_store: StoreMaker, graph: mx.FeatureGraph) -> None:
    """The increment's empty ``failed`` frame is ``new``'s columns plus the failure columns: a user
    column of a failure column's name is retyped where it stands, not duplicated or refused."""
    raw, down = _define()
    store = make_store()
    with store.open("w"):
        store.write(raw, _raw(["a", "b"]).with_columns(pl.lit(7).alias("metaxy_error")))
        inc = store.resolve_update(down)
        new, failed = inc.new.to_polars(), inc.failed.to_polars()
    assert new.height == 2 and new.schema["metaxy_error"] == pl.Int32
    assert failed.height == 0
    assert failed.columns == [*new.columns, "metaxy_error_type", "metaxy_failed_at"]
    assert failed.schema["metaxy_error"] == pl.String
