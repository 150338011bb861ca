"""Conformance: ``read`` -- merge-on-read, history flags, columns, fallback stores (spec §5.2, §9.3)."""

from __future__ import annotations

from datetime import UTC, datetime

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import FeatureNotFoundError
from metaxy.frames import collect_to_polars
from metaxy.testing.conformance_support import (
    CREATED_AT,
    DATA_VERSION,
    DATA_VERSION_BY_FIELD,
    DELETED_AT,
    FEATURE_VERSION,
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    ConformanceBase,
    StoreFactory,
    id_set,
    rows,
    samples,
)

__all__ = ["ReadConformance"]


def _clip(code_version: str = "1") -> type[mx.BaseFeature]:
    class Clip(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="read/clip", id_columns=["sample_id"], fields=[mx.FieldSpec(key="default", code_version=code_version)]
        ),
    ):
        sample_id: str
        x: int | None = None

    return Clip


def _x_by_id(frame: object) -> dict[str, int]:
    return {r["sample_id"]: r["x"] for r in rows(frame, ["sample_id", "x"])}


class ReadConformance(ConformanceBase):
    def test_read_returns_a_narwhals_lazy_frame(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"], x=[1]))
            frame = store.read(clip)
            assert isinstance(frame, nw.LazyFrame)
            assert _x_by_id(frame) == {"a": 1}

    def test_latest_row_per_id_wins(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 1]))
            store.write(clip, samples(["a"], x=[2], tag="v2"))
            frame = collect_to_polars(store.read(clip))
        assert frame.height == 2
        assert _x_by_id(frame) == {"a": 2, "b": 1}

    def test_last_write_wins_even_when_its_created_at_is_older(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        newer = datetime(2024, 6, 1, tzinfo=UTC)
        older = datetime(2020, 1, 1, tzinfo=UTC)
        utc = pl.Datetime("us", "UTC")
        with store.open("w"):
            store.write(clip, samples(["a"], x=[1]).with_columns(pl.lit(newer, dtype=utc).alias(CREATED_AT)))
            store.write(clip, samples(["a"], x=[2]).with_columns(pl.lit(older, dtype=utc).alias(CREATED_AT)))
            (row,) = rows(store.read(clip))
        assert row["x"] == 2
        assert row[CREATED_AT] == older

    def test_rows_written_together_tie_break_on_data_version_then_provenance(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        by_field = pl.Series([{"default": "same"}] * 4, dtype=pl.Struct({"default": pl.String}))
        frame = pl.DataFrame(
            {
                "sample_id": ["a", "a", "b", "b"],
                "x": [1, 2, 3, 4],
                PROVENANCE_BY_FIELD: by_field,
                DATA_VERSION_BY_FIELD: by_field,
                # "a": the greater data version wins; "b": equal data versions, the greater provenance wins.
                DATA_VERSION: ["dv-2", "dv-1", "dv", "dv"],
                PROVENANCE: ["p-1", "p-2", "p-9", "p-3"],
            }
        )
        store = store_factory()
        with store.open("w"):
            store.write(clip, frame)  # one write: every row gets the same updated_at
            assert _x_by_id(store.read(clip)) == {"a": 1, "b": 3}

    @pytest.mark.parametrize("use_sql", [False, True], ids=["narwhals", "sql"])
    def test_user_filters_apply_after_deduplication(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, use_sql: bool
    ) -> None:
        clip = _clip()
        store = store_factory()
        is_one = "x = 1" if use_sql else nw.col("x") == 1
        is_two = "x = 2" if use_sql else nw.col("x") == 2
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 1]))
            store.write(clip, samples(["a"], x=[2]))
            # "a" once had x == 1, but its latest row has x == 2: the filter must not resurrect it.
            assert _x_by_id(store.read(clip, filters=[is_one])) == {"b": 1}
            assert _x_by_id(store.read(clip, filters=[is_two])) == {"a": 2}

    def test_soft_deleted_rows_are_hidden_unless_requested(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 2]))
            store.delete(clip, nw.col("sample_id") == "a")
            assert id_set(store.read(clip)) == {"b"}
            with_deleted = {r["sample_id"]: r for r in rows(store.read(clip, include_soft_deleted=True))}
        assert set(with_deleted) == {"a", "b"}
        assert with_deleted["a"][DELETED_AT] is not None
        assert with_deleted["b"][DELETED_AT] is None

    def test_with_sample_history_returns_every_row(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 1]))
            store.write(clip, samples(["a"], x=[2]))
            history = rows(store.read(clip, with_sample_history=True), ["sample_id", "x"])
        assert history == [{"sample_id": "a", "x": 1}, {"sample_id": "a", "x": 2}, {"sample_id": "b", "x": 1}]

    def test_reads_only_the_current_feature_version(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip_v1 = _clip("1")
        v1 = clip_v1.feature_version()
        store = store_factory()
        with store.open("w"):
            store.write(clip_v1, samples(["a", "b"], x=[1, 1]))
        graph_v2 = mx.FeatureGraph()
        with graph_v2.use():
            clip_v2 = _clip("2")
            v2 = clip_v2.feature_version()
            assert v1 != v2
            with store.open("w"):
                store.write(clip_v2, samples(["c"], x=[3]))
                assert id_set(store.read(clip_v2)) == {"c"}
                everything = rows(store.read(clip_v2, with_feature_history=True), ["sample_id", FEATURE_VERSION])
                assert sorted((r["sample_id"], r[FEATURE_VERSION]) for r in everything) == [
                    ("a", v1),
                    ("b", v1),
                    ("c", v2),
                ]
                old = store.read(clip_v2, with_feature_history=True, feature_version=v1)
                assert id_set(old) == {"a", "b"}
        with store:
            # Back in the v1 graph, the v2 row is invisible.
            assert id_set(store.read(clip_v1)) == {"a", "b"}

    def test_feature_version_requires_with_feature_history(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"], x=[1]))
            with pytest.raises(ValueError, match="with_feature_history"):
                store.read(clip, feature_version=clip.feature_version())

    def test_table_without_current_rows_reads_as_an_empty_frame(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        with store.open("w"):
            store.write(_clip("1"), samples(["a"], x=[1]))
        with mx.FeatureGraph().use():
            clip_v2 = _clip("2")
            with store:
                frame = collect_to_polars(store.read(clip_v2))
        assert frame.height == 0
        assert {"sample_id", "x", PROVENANCE_BY_FIELD} <= set(frame.columns)

    def test_columns_returns_exactly_the_requested_columns(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"], x=[1]))
            frame = collect_to_polars(store.read(clip, columns=["x", "sample_id"]))
        assert frame.columns == ["x", "sample_id"]
        assert frame.to_dicts() == [{"x": 1, "sample_id": "a"}]

    def test_missing_feature_raises_feature_not_found(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store, pytest.raises(FeatureNotFoundError):
            store.read(clip)
        with store, pytest.raises(KeyError):  # FeatureNotFoundError is a KeyError
            store.read(clip)

    # --- fallback stores ---------------------------------------------------------------------------

    def test_fallback_store_serves_a_feature_missing_locally(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        fallback = store_factory()
        with fallback.open("w"):
            fallback.write(clip, samples(["a", "b"], x=[1, 2]))
        primary = store_factory(fallback_stores=[fallback])
        with primary:
            assert _x_by_id(primary.read(clip)) == {"a": 1, "b": 2}
            frame, source = primary.read(clip, with_store_info=True)
            assert source is fallback
            assert _x_by_id(frame) == {"a": 1, "b": 2}
            with pytest.raises(FeatureNotFoundError):
                primary.read(clip, allow_fallback=False)
            assert primary.has_feature(clip) is False
            assert primary.has_feature(clip, check_fallback=True) is True

    def test_local_table_wins_over_fallback_all_or_nothing(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        fallback = store_factory()
        with fallback.open("w"):
            fallback.write(clip, samples(["a", "b"], x=[10, 20]))
        primary = store_factory(fallback_stores=[fallback])
        with primary.open("w"):
            primary.write(clip, samples(["a"], x=[1]))
            assert _x_by_id(primary.read(clip)) == {"a": 1}
            _, source = primary.read(clip, with_store_info=True)
            assert source is primary

    def test_fallback_chains_are_followed_recursively(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        deepest = store_factory()
        with deepest.open("w"):
            deepest.write(clip, samples(["z"], x=[26]))
        middle = store_factory(fallback_stores=[deepest])
        primary = store_factory(fallback_stores=[middle])
        with primary:
            frame, source = primary.read(clip, with_store_info=True)
            assert source is deepest
            assert _x_by_id(frame) == {"z": 26}

    def test_feature_absent_from_every_store_raises(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        primary = store_factory(fallback_stores=[store_factory(), store_factory()])
        with primary, pytest.raises(FeatureNotFoundError):
            primary.read(clip)
