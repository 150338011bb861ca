"""Conformance: no acknowledged write is lost, no silent wrong answer, a typed error for every
mistake (docs/reliability.md).

A catalogue that grows: each case a user (or a red team) found becomes a test here, and every
backend runs it. Every failing call is followed by proof that the store's contents did not change.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import pickle
import threading
from collections.abc import Callable
from typing import Any

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import (
    ColumnNotFoundError,
    FilterParseError,
    MetadataSchemaError,
    StoreNotOpenError,
)
from metaxy.frames import collect_to_polars
from metaxy.testing.conformance_support import (
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    ConformanceBase,
    StoreFactory,
    VideoFeatures,
    define_video_features,
    id_set,
    samples,
    video_contents,
)

__all__ = ["TrustConformance"]

_FIELDS = ("audio", "frames")


class UserFrameError(Exception):
    """Raised from inside a user's lazy frame while a store consumes it."""


def _raising(frame: pl.DataFrame) -> pl.LazyFrame:
    """``frame`` as a lazy frame whose evaluation raises :class:`UserFrameError`."""

    def boom(values: pl.Series) -> pl.Series:
        raise UserFrameError("the decoder crashed")

    return frame.lazy().with_columns(pl.col("sample_id").map_batches(boom, return_dtype=pl.String))


def _twin(store: Any) -> Any:
    """A second store object on the same storage (a copy of its configuration)."""
    return pickle.loads(pickle.dumps(store))


def _shares_storage(store: Any, twin: Any, vf: VideoFeatures) -> bool:
    """Whether rows written through ``twin`` are seen through ``store`` (false for stores whose data
    lives in the object, such as the in-memory store)."""
    with twin.open("w"):
        twin.write(vf.faces, samples(["probe"], ("faces",)).with_columns(pl.lit("p").alias(PROVENANCE)))
    with store:
        return store.has_feature(vf.faces) and "probe" in id_set(store.read(vf.faces))


def _run_threads(target: Callable[[int], None], count: int) -> list[BaseException]:
    """Run ``target(i)`` in ``count`` threads (each in a copy of this context: the active graph
    and config are context variables) and return what they raised."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(run, i), name=f"metaxy-trust-{i}")
        for i in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    return errors


class TrustConformance(ConformanceBase):
    # --- 1. a failed write undoes only its own rows ----------------------------------------------
    @pytest.mark.parametrize("table", ["new", "existing"])
    def test_a_failing_lazy_frame_writes_nothing_and_keeps_its_error_type(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, table: str
    ) -> None:
        store = store_factory()
        vf = define_video_features()
        if table == "existing":
            with store.open("w"):
                store.write(vf.video, samples(["a"], _FIELDS))
        before = video_contents(store, vf)
        with store.open("w"), pytest.raises(UserFrameError, match="decoder crashed"):
            store.write(vf.video, _raising(samples(["b", "c"], _FIELDS)))
        assert video_contents(store, vf) == before

    def test_a_failed_first_write_keeps_rows_another_store_object_wrote(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        vf = define_video_features()
        twin = _twin(store)
        if not _shares_storage(store, twin, vf):  # data lives in the object: nothing to share
            return self._assert_one_object_in_threads(store, vf)
        with store.open("w"), twin.open("w"):
            assert not store.has_feature(vf.video)  # this object has looked: the table is new to it
            twin.write(vf.video, samples(["a", "b"], _FIELDS))  # acknowledged
            with pytest.raises(UserFrameError):
                store.write(vf.video, _raising(samples(["c"], _FIELDS)))
        with store:
            assert id_set(store.read(vf.video)) == {"a", "b"}

    def test_store_objects_in_threads_lose_no_write(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        vf = define_video_features()
        if not _shares_storage(store, _twin(store), vf):
            return self._assert_one_object_in_threads(store, vf)

        def writer(i: int) -> None:
            own = _twin(store)  # each thread its own store object on the same storage
            for j in range(5):
                with own.open("w"):
                    own.write(vf.video, samples([f"{i}-{j}"], _FIELDS))

        assert _run_threads(writer, 4) == []
        with store:
            assert id_set(store.read(vf.video)) == {f"{i}-{j}" for i in range(4) for j in range(5)}

    def test_one_store_object_shared_by_threads(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        self._assert_one_object_in_threads(store_factory(), define_video_features())

    def _assert_one_object_in_threads(self, store: Any, vf: VideoFeatures) -> None:
        """Each thread opens the shared object for itself and writes; a thread that did not open
        it gets StoreNotOpenError (the main thread's open is not theirs)."""

        def writer(i: int) -> None:
            for j in range(5):
                with store.open("w"):
                    store.write(vf.video, samples([f"t{i}-{j}"], _FIELDS))

        assert _run_threads(writer, 4) == []
        with store.open("w"):
            errors = _run_threads(lambda i: store.write(vf.video, samples(["x"], _FIELDS)), 1)
            assert len(errors) == 1 and isinstance(errors[0], StoreNotOpenError), errors
            assert "thread" in str(errors[0])
            ids = id_set(store.read(vf.video))
        assert {f"t{i}-{j}" for i in range(4) for j in range(5)} <= ids
        assert "x" not in ids

    # --- 3. identical frames are always appendable -----------------------------------------------
    @pytest.mark.parametrize("kind", ["categorical", "enum", "zoned-datetime"])
    def test_an_identical_frame_can_be_written_twice(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, kind: str
    ) -> None:
        store = store_factory()
        vf = define_video_features()
        instants = [dt.datetime(2024, 3, 31, 1, 30), dt.datetime(2024, 10, 27, 2, 30)]
        column = {
            "categorical": pl.Series(["x", "y"], dtype=pl.Categorical),
            "enum": pl.Series(["x", "y"], dtype=pl.Enum(["x", "y"])),
            "zoned-datetime": pl.Series(instants).dt.replace_time_zone("Europe/Paris", ambiguous="earliest"),
        }[kind]
        frame = samples(["a", "b"], _FIELDS).with_columns(column.alias("extra"))
        with store.open("w"):
            store.write(vf.video, frame)
            store.write(vf.video, frame)
            stored = collect_to_polars(store.read(vf.video, with_sample_history=True)).sort("sample_id")
        assert stored.height == 4
        values = stored.get_column("extra")
        if kind == "zoned-datetime":  # the same instants, in UTC
            assert values.dtype == pl.Datetime("us", "UTC")
            expected = column.dt.convert_time_zone("UTC").to_list()
            assert values.to_list() == [expected[0], expected[0], expected[1], expected[1]]
        else:  # categories are stored as their strings
            assert values.dtype == pl.String
            assert values.to_list() == ["x", "x", "y", "y"]

    def test_a_duration_column_is_refused_at_the_first_write(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        vf = define_video_features()
        frame = samples(["a"], _FIELDS).with_columns(pl.Series("length", [dt.timedelta(seconds=3)]))
        with store.open("w"), pytest.raises(MetadataSchemaError, match=r"length.*Duration.*total_microseconds"):
            store.write(vf.video, frame)
        assert video_contents(store, vf)[mx.coerce_to_feature_key(vf.video).to_string()] is None

    # --- 4. no endless recomputation --------------------------------------------------------------
    @pytest.mark.parametrize("where", ["id", "provenance-value", "provenance-struct"])
    def test_null_ids_and_provenance_are_refused(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, where: str
    ) -> None:
        store = store_factory()
        vf = define_video_features()
        with store.open("w"):
            store.write(vf.video, samples(["a"], _FIELDS))
        before = video_contents(store, vf)
        frame = samples(["b", "c"], _FIELDS)
        if where == "id":
            frame = frame.with_columns(
                pl.when(pl.col("sample_id") == "c").then(None).otherwise(pl.col("sample_id")).alias("sample_id")
            )
        elif where == "provenance-value":
            frame = frame.with_columns(
                pl.struct(audio=pl.lit(None, pl.String), frames=pl.lit("f")).alias(PROVENANCE_BY_FIELD)
            )
        else:
            frame = frame.with_columns(pl.lit(None).cast(frame.schema[PROVENANCE_BY_FIELD]).alias(PROVENANCE_BY_FIELD))
        with store.open("w"):
            with pytest.raises(MetadataSchemaError, match="null"):
                store.write(vf.video, frame)
            with pytest.raises(MetadataSchemaError, match="null"):
                store.resolve_update(vf.video, samples=frame)
        assert video_contents(store, vf) == before

    def test_duplicate_ids_in_samples_are_refused(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        vf = define_video_features()
        frame = pl.concat([samples(["a", "b"], _FIELDS), samples(["b"], _FIELDS, tag="v2")])
        with store.open("w"), pytest.raises(MetadataSchemaError, match=r"more than once.*: b"):
            store.resolve_update(vf.video, samples=frame)

    def test_duplicate_ids_in_one_write_give_one_row_and_one_stale_entry(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        vf = define_video_features()
        with store.open("w"):
            store.write(vf.video, samples(["a", "b"], _FIELDS))
            store.write(vf.transcript, store.resolve_update(vf.transcript).new)
            # "a" written twice in one frame, with two different audio versions
            store.write(vf.video, pl.concat([samples(["a"], _FIELDS, tag="v2"), samples(["a"], _FIELDS, tag="v3")]))
            assert collect_to_polars(store.read(vf.video)).get_column("sample_id").sort().to_list() == ["a", "b"]
            stale = collect_to_polars(store.resolve_update(vf.transcript).stale)
        assert stale.get_column("sample_id").to_list() == ["a"]

    # --- 6. typed errors for everyday mistakes ----------------------------------------------------
    def _populated(self, store: Any) -> VideoFeatures:
        vf = define_video_features()
        with store.open("w"):
            store.write(vf.video, samples(["a", "b"], _FIELDS, score=[1, 2]))
            store.write(vf.transcript, store.resolve_update(vf.transcript).new)
        return vf

    @pytest.mark.parametrize(
        "call",
        [
            "read-filter",
            "read-filter-by-case",
            "read-polars-expr",
            "read-columns",
            "resolve-upstream-filter",
            "resolve-global-filter",
            "resolve-target-filter",
            "soft-delete",
            "hard-delete",
        ],
    )
    def test_unknown_columns_are_named_with_the_available_ones(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, call: str
    ) -> None:
        store = store_factory()
        vf = self._populated(store)
        before = video_contents(store, vf)
        calls: dict[str, Callable[[], Any]] = {
            "read-filter": lambda: store.read(vf.video, filters="scroe > 1"),
            "read-filter-by-case": lambda: store.read(vf.video, filters=["Score > 1"]),
            "read-polars-expr": lambda: store.read(vf.video, filters=pl.col("scroe") > 1),
            "read-columns": lambda: store.read(vf.video, columns=["sample_id", "scroe"]),
            "resolve-upstream-filter": lambda: store.resolve_update(vf.transcript, filters={vf.video: ["scroe > 1"]}),
            "resolve-global-filter": lambda: store.resolve_update(vf.transcript, global_filters=["scroe > 1"]),
            "resolve-target-filter": lambda: store.resolve_update(vf.transcript, target_filters=["scroe > 1"]),
            "soft-delete": lambda: store.delete(vf.video, "scroe > 1"),
            "hard-delete": lambda: store.delete(vf.video, "scroe > 1", soft=False),
        }
        with store.open("w"), pytest.raises(ColumnNotFoundError) as info:
            calls[call]()
        message = str(info.value)
        assert "Available columns:" in message and "sample_id" in message and "Hint:" in message
        assert "scroe" in message or "Score" in message
        assert video_contents(store, vf) == before

    @pytest.mark.parametrize("bad", [5, 1.5, {"score": 1}, b"score > 1"], ids=["int", "float", "dict", "bytes"])
    def test_a_filter_that_is_not_a_filter_is_refused(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, bad: Any
    ) -> None:
        store = store_factory()
        vf = self._populated(store)
        before = video_contents(store, vf)
        with store.open("w"):
            with pytest.raises(FilterParseError, match="Unsupported filter"):
                store.read(vf.video, filters=bad)
            with pytest.raises(FilterParseError, match="Unsupported filter"):
                store.delete(vf.video, bad, soft=False)
        assert video_contents(store, vf) == before

    def test_columns_that_differ_only_by_case_are_refused(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        vf = self._populated(store)
        before = video_contents(store, vf)
        with store.open("w"):
            with pytest.raises(MetadataSchemaError, match="differ only by case"):
                store.write(vf.video, samples(["c"], _FIELDS, rank=[1], Rank=[2]))
            with pytest.raises(MetadataSchemaError, match=r"'Score' differs only by case .* 'score'"):
                store.write(vf.video, samples(["c"], _FIELDS, Score=[3]))
        assert video_contents(store, vf) == before

    # --- 8. dangerous operations are explicit -----------------------------------------------------
    @pytest.mark.parametrize("soft", [True, False], ids=["soft", "hard"])
    def test_a_delete_with_an_empty_filter_list_is_refused(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, soft: bool
    ) -> None:
        store = store_factory()
        vf = self._populated(store)
        before = video_contents(store, vf)
        with store.open("w"), pytest.raises(MetadataSchemaError, match=r"empty filter list.*filters=None"):
            store.delete(vf.video, [], soft=soft)
        assert video_contents(store, vf) == before

    # --- 9. scale of bad input: thousands of OR-ed terms give the right answer --------------------
    @pytest.mark.parametrize("form", ["or", "in"])
    def test_thousands_of_ored_ids(self, store_factory: StoreFactory, graph: mx.FeatureGraph, form: str) -> None:
        store = store_factory()
        vf = define_video_features()
        ids = [f"s{i}" for i in range(3000)]
        wanted = ids[::3]
        if form == "or":
            condition = " OR ".join(f"sample_id = '{i}'" for i in wanted)
        else:
            condition = "sample_id IN (" + ", ".join(f"'{i}'" for i in wanted) + ")"
        with store.open("w"):
            store.write(vf.video, samples(ids, _FIELDS))
            assert id_set(store.read(vf.video, filters=condition)) == set(wanted)
            assert id_set(store.read(vf.video, filters=f"NOT ({condition})")) == set(ids) - set(wanted)
            assert store.delete(vf.video, condition, soft=False) == len(wanted)
            assert id_set(store.read(vf.video)) == set(ids) - set(wanted)
        narwhals_filter = nw.col("sample_id").is_in(ids[:2])
        with store:
            assert id_set(store.read(vf.video, filters=narwhals_filter)) == {"s1"}
