"""metaxy.ext.ray on a real local Ray cluster, over DuckDB (committer actor), Delta and PostgreSQL
(parallel commits): round trips, pushed-down filters, increments, and the failure semantics of
distributed writes (a failed task commits nothing, a retry duplicates nothing, a killed worker
loses nothing acknowledged)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import DistributedWriteError, FeatureNotInGraphError, FilterParseError
from metaxy.models import constants as c

if TYPE_CHECKING:
    from metaxy.testing.ray_faults import Fault

pytestmark = [pytest.mark.xdist_group("ray")]

N = 1200
BLOCKS = 4
STORES = ["duckdb", "delta", "postgresql"]


def _features() -> tuple[type[mx.BaseFeature], type[mx.BaseFeature]]:
    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="ray/clip", id_columns=["sample_id"], fields=["audio"])):
        sample_id: str

    class Loud(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="ray/loudness", id_columns=["sample_id"], deps=[Clip], fields=["db"]),
    ):
        sample_id: str

    return Clip, Loud


def _rows(n: int, offset: int = 0) -> pl.DataFrame:
    ids = [f"s{i:06d}" for i in range(offset, offset + n)]
    return pl.DataFrame(
        {
            "sample_id": ids,
            "score": [(i * 37 % 100) / 100 for i in range(offset, offset + n)],
            c.PROVENANCE_BY_FIELD: [{"audio": f"a{i}"} for i in range(offset, offset + n)],
        }
    )


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], mx.MetadataStore]]:
    def make(kind: str) -> mx.MetadataStore:
        if kind == "duckdb":
            from metaxy.ext.duckdb import DuckDBMetadataStore

            return DuckDBMetadataStore(str(tmp_path / "meta.duckdb"), auto_create_tables=True)
        if kind == "delta":
            from metaxy.metadata_store.delta import DeltaMetadataStore

            return DeltaMetadataStore(tmp_path / "delta", auto_create_tables=True)
        from metaxy.ext.postgresql import PostgreSQLMetadataStore

        return PostgreSQLMetadataStore(request.getfixturevalue("postgres_url"), auto_create_tables=True)

    yield make


def _dataset(ray: Any, rows: pl.DataFrame, blocks: int = BLOCKS) -> Any:
    """``rows`` as a Dataset of ``blocks`` equal blocks (no shuffle: each becomes one write task)."""
    step = -(-rows.height // blocks)
    return ray.data.from_arrow([rows.slice(i * step, step).to_arrow() for i in range(blocks)])


def _stored(store: mx.MetadataStore, key: str) -> pl.DataFrame:
    with store.open("r"):
        frame = store.read(key, with_sample_history=True).collect().to_polars()
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.mark.parametrize("kind", STORES)
def test_write_and_read_back(ray_cluster: Any, graph: mx.FeatureGraph, make_store: Any, kind: str) -> None:
    from metaxy.ext.ray import read_feature, write_metadata

    clip, _ = _features()
    store = make_store(kind)
    rows = _rows(N)
    report = write_metadata(_dataset(ray_cluster, rows), store, clip)
    assert (report.rows, report.rows_written, report.blocks_skipped) == (N, N, 0)
    assert report.blocks == BLOCKS

    stored = _stored(store, "ray/clip")
    assert stored.height == N and stored["sample_id"].n_unique() == N
    assert stored[c.MATERIALIZATION_ID].n_unique() == BLOCKS  # one token per block
    assert all(t.startswith(report.write_id + "/") for t in stored[c.MATERIALIZATION_ID].unique())

    ds = read_feature(store, clip, num_blocks=3)
    assert sorted(r["sample_id"] for r in ds.select_columns(["sample_id"]).take_all()) == rows["sample_id"].to_list()

    # Filters are pushed down to the store (SQL strings); the result is the store's own filter.
    picked = read_feature(store, clip, filters=["score >= 0.5"], columns=["sample_id", "score"], num_blocks=3)
    got = sorted(r["sample_id"] for r in picked.take_all())
    assert got == rows.filter(pl.col("score") >= 0.5)["sample_id"].to_list()
    assert set(picked.schema().names) == {"sample_id", "score"}


# Every store sees a task that commits then raises; a SIGKILLed worker costs a new worker process,
# so the kills are spread over the stores: after the commit on DuckDB (through the committer
# actor) and PostgreSQL, before it on Delta.
FAULTS = [
    *[("raise_after", kind) for kind in STORES],
    ("kill_after", "duckdb"),
    ("kill_after", "postgresql"),
    ("kill_before", "delta"),
]


@pytest.mark.parametrize(("fault", "kind"), FAULTS)
def test_retried_and_killed_tasks_commit_once(
    ray_cluster: Any, graph: mx.FeatureGraph, make_store: Any, kind: str, fault: Fault, tmp_path: Path
) -> None:
    """Task 1 commits then raises (or its worker is SIGKILLed before/after committing) on its first
    attempt: Ray retries it; every row is stored exactly once and the retry reports the skip."""
    from metaxy.testing.ray_faults import FaultyDatasink

    clip, _ = _features()
    store = make_store(kind)
    rows = _rows(400)
    markers = tmp_path / "markers"
    markers.mkdir()
    sink = FaultyDatasink(store, clip, faults={1: fault}, marker_dir=markers)
    _dataset(ray_cluster, rows).write_datasink(sink, ray_remote_args={"max_retries": 2, "retry_exceptions": True})
    assert (markers / f"{sink.write_id}-1").exists()  # the fault did strike
    stored = _stored(store, "ray/clip")
    assert stored.height == 400 and stored["sample_id"].n_unique() == 400
    assert sink.report is not None and sink.report.rows == 400
    # Committed-then-failed attempts are found by the retry, not written again.
    assert sink.report.blocks_skipped == (0 if fault == "kill_before" else 1)


@pytest.mark.parametrize("kind", STORES)
def test_failed_task_commits_nothing(
    ray_cluster: Any, graph: mx.FeatureGraph, make_store: Any, kind: str, tmp_path: Path
) -> None:
    from metaxy.testing.ray_faults import FaultyDatasink

    clip, _ = _features()
    store = make_store(kind)
    sink = FaultyDatasink(store, clip, faults={2: "raise_always"}, marker_dir=tmp_path)
    ds = _dataset(ray_cluster, _rows(400))
    with pytest.raises(Exception, match="raise_always"):
        ds.write_datasink(sink, ray_remote_args={"max_retries": 1, "retry_exceptions": True})
    with store.open("r"):
        exists = store.has_feature(clip)
    if exists:
        stored = _stored(store, "ray/clip")
        assert f"{sink.write_id}/2" not in stored[c.MATERIALIZATION_ID].to_list()
        assert stored["sample_id"].n_unique() == stored.height  # whole blocks, no duplicate
        assert (
            stored.group_by(c.MATERIALIZATION_ID).len()["len"].to_list()
            == [100] * stored[c.MATERIALIZATION_ID].n_unique()
        )


def test_write_metadata_raises_typed_error(ray_cluster: Any, graph: mx.FeatureGraph, make_store: Any) -> None:
    """A frame that cannot be metadata (no provenance column) fails every attempt: the typed error
    names the write, nothing is stored."""
    from metaxy.ext.ray import write_metadata

    clip, _ = _features()
    store = make_store("delta")
    bad = _rows(50).drop(c.PROVENANCE_BY_FIELD)
    with pytest.raises(DistributedWriteError, match="ray/clip") as info:
        write_metadata(ray_cluster.data.from_arrow(bad.to_arrow()), store, clip, max_retries=0)
    assert "Hint:" in str(info.value) and info.value.__cause__ is not None
    with store.open("r"):
        assert not store.has_feature(clip)


def test_committer_queue_is_bounded(ray_cluster: Any, graph: mx.FeatureGraph, make_store: Any) -> None:
    """DuckDB: 12 blocks through a committer whose queue holds one: producers wait, all land; the
    committer is stopped after the write."""
    from metaxy.ext.ray import write_metadata

    clip, _ = _features()
    store = make_store("duckdb")
    report = write_metadata(_dataset(ray_cluster, _rows(600), 12), store, clip, max_pending_commits=1)
    assert report.rows == 600 and report.blocks == 12
    assert _stored(store, "ray/clip").height == 600
    names = [a["name"] for a in ray_cluster.util.list_named_actors(all_namespaces=True)]
    assert f"metaxy-committer-{report.write_id}" not in names


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_increment_fans_out_and_is_consumed(
    ray_cluster: Any, graph: mx.FeatureGraph, make_store: Any, kind: str
) -> None:
    """Resolve once, compute in Ray tasks, write back: the next resolve finds nothing new; an
    upstream change shows as stale (``part="both"`` tags the rows)."""
    from metaxy.ext.ray import INCREMENT_COLUMN, read_increment, write_metadata

    clip, loud = _features()
    store = make_store(kind)
    with store.open("w"):
        store.write(clip, _rows(300))

    def compute(batch: Any) -> Any:
        batch["loudness"] = [len(s) * 1.5 for s in batch["sample_id"]]
        return batch

    todo = read_increment(store, loud, "new", num_blocks=3)
    assert todo.count() == 300
    report = write_metadata(todo.map_batches(compute, batch_format="pandas"), store, loud)
    assert report.rows == 300
    assert read_increment(store, loud, "new").count() == 0

    with store.open("w"):
        store.write(clip, _rows(20).with_columns(pl.lit({"audio": "changed"}).alias(c.PROVENANCE_BY_FIELD)))
        store.write(clip, _rows(10, offset=300))
    both = read_increment(store, loud, "both").to_pandas()
    assert both[INCREMENT_COLUMN].value_counts().to_dict() == {"stale": 20, "new": 10}


def test_bad_arguments_raise_typed_errors(graph: mx.FeatureGraph, make_store: Any) -> None:
    from metaxy.ext.ray import MetaxyDatasink, MetaxyDatasource

    clip, _ = _features()
    store = make_store("delta")
    with pytest.raises(FilterParseError, match="SQL filter strings"):
        MetaxyDatasource(store, clip, filters=[pl.col("score") > 1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="increment part"):
        MetaxyDatasource(store, clip, increment="old")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pending_commits"):
        MetaxyDatasink(store, clip, max_pending_commits=0)
    with pytest.raises(FeatureNotInGraphError):
        MetaxyDatasink(store, "ray/nowhere")


def test_secrets_stay_out_of_reprs(graph: mx.FeatureGraph, postgres_url: str) -> None:
    from urllib.parse import urlparse

    from metaxy.ext.postgresql import PostgreSQLMetadataStore
    from metaxy.ext.ray import MetaxyDatasink

    clip, _ = _features()
    password = urlparse(postgres_url).password
    assert password
    sink = MetaxyDatasink(PostgreSQLMetadataStore(postgres_url), clip)
    assert password not in repr(sink) and "ray/clip" in repr(sink)
