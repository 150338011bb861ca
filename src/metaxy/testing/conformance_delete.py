"""Conformance: soft and hard deletes, dropping and copying metadata (spec §5.5, §9.4)."""

from __future__ import annotations

import narwhals as nw
import pytest

import metaxy as mx
from metaxy.errors import FeatureNotFoundError
from metaxy.frames import collect_to_polars
from metaxy.testing.conformance_support import (
    CREATED_AT,
    DELETED_AT,
    FEATURE_VERSION,
    UPDATED_AT,
    ConformanceBase,
    StoreFactory,
    id_set,
    rows,
    samples,
)

__all__ = ["DeleteConformance"]


def _clip(code_version: str = "1", key: str = "del/clip") -> type[mx.BaseFeature]:
    class Clip(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key=key, id_columns=["sample_id"], fields=[mx.FieldSpec(key="default", code_version=code_version)]
        ),
    ):
        sample_id: str
        x: int | None = None

    return Clip


def _other() -> type[mx.BaseFeature]:
    class Other(mx.BaseFeature, spec=mx.FeatureSpec(key="del/other", id_columns=["sample_id"])):
        sample_id: str

    return Other


def _all_rows(store: object, feature: object) -> list[dict[str, object]]:
    return rows(
        store.read(  # type: ignore[attr-defined]
            feature, with_feature_history=True, with_sample_history=True, include_soft_deleted=True
        )
    )


class DeleteConformance(ConformanceBase):
    # --- soft delete -------------------------------------------------------------------------------

    def test_soft_delete_appends_a_marker_keeping_timestamps(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 2]))
            (original,) = rows(store.read(clip, filters=[nw.col("sample_id") == "a"]))
            store.delete(clip, nw.col("sample_id") == "a")
            assert id_set(store.read(clip)) == {"b"}
            (marker,) = rows(store.read(clip, include_soft_deleted=True, filters=[nw.col("sample_id") == "a"]))
            history = [r for r in _all_rows(store, clip) if r["sample_id"] == "a"]
        assert marker[DELETED_AT] is not None
        assert marker[DELETED_AT] >= original[UPDATED_AT]
        assert marker[CREATED_AT] == original[CREATED_AT]
        assert marker[UPDATED_AT] == original[UPDATED_AT]
        assert marker["x"] == 1
        assert marker[FEATURE_VERSION] == clip.feature_version()
        assert len(history) == 2  # append-only: the original row is still there

    def test_rewriting_a_soft_deleted_sample_revives_it(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"], x=[1]))
            store.delete(clip, "sample_id = 'a'")
            assert id_set(store.read(clip)) == set()
            store.write(clip, samples(["a"], x=[3]))
            (row,) = rows(store.read(clip))
        assert row["x"] == 3
        assert row[DELETED_AT] is None

    def test_soft_deleting_an_older_history_row_hides_the_sample(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 1]))
            store.write(clip, samples(["a"], x=[2]))
            store.delete(clip, [nw.col("x") == 1], with_sample_history=True)
            # The marker for the old a/x=1 row carries the newest sort key.
            assert id_set(store.read(clip)) == set()

    def test_soft_delete_without_filters_deletes_every_current_sample(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 2]))
            store.delete(clip, None)
            assert id_set(store.read(clip)) == set()
            assert id_set(store.read(clip, include_soft_deleted=True)) == {"a", "b"}

    # --- hard delete -------------------------------------------------------------------------------

    def test_hard_delete_removes_rows_physically(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"], x=[1, 2]))
            store.write(clip, samples(["a"], x=[3]))
            store.delete(clip, nw.col("sample_id") == "a", soft=False)
            remaining = _all_rows(store, clip)
        assert [r["sample_id"] for r in remaining] == ["b"]

    def test_hard_delete_is_limited_to_the_current_version_unless_asked(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        with store.open("w"):
            store.write(_clip("1"), samples(["old"], x=[1]))
        with mx.FeatureGraph().use():
            clip_v2 = _clip("2")
            with store.open("w"):
                store.write(clip_v2, samples(["new"], x=[2]))
                store.delete(clip_v2, None, soft=False)
                # The table still exists (and holds the old version): reads give an empty frame.
                assert collect_to_polars(store.read(clip_v2)).height == 0
                assert store.has_feature(clip_v2) is True
                assert [r["sample_id"] for r in _all_rows(store, clip_v2)] == ["old"]
                store.delete(clip_v2, None, soft=False, with_feature_history=True)
                assert _all_rows(store, clip_v2) == []

    # --- drop --------------------------------------------------------------------------------------

    def test_drop_feature_metadata_removes_the_feature_only(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip, other = _clip(), _other()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"], x=[1]))
            store.write(other, samples(["a"]))
            store.drop_feature_metadata(clip)
            assert store.has_feature(clip) is False
            with pytest.raises(FeatureNotFoundError):
                store.read(clip)
            assert id_set(store.read(other)) == {"a"}
            store.write(clip, samples(["b"], x=[2]))
            assert id_set(store.read(clip)) == {"b"}

    # --- copy --------------------------------------------------------------------------------------

    def test_copy_metadata_copies_latest_rows_with_their_versions(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip, other = _clip(), _other()
        source, target = store_factory(), store_factory()
        with source.open("w"):
            source.write(clip, samples(["a", "b"], x=[1, 2]))
            source.write(clip, samples(["a"], x=[3]))
            source.write(other, samples(["z"]))
        with source, target.open("w"):
            result = target.copy_metadata(source, features=[clip])
            assert result == {"features_copied": 1, "rows_copied": 2}
            assert target.has_feature(other) is False
            keep = ["sample_id", "x", FEATURE_VERSION, CREATED_AT]
            assert rows(target.read(clip), keep) == rows(source.read(clip), keep)

    def test_copy_metadata_of_all_features_skips_missing_ones(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip, other = _clip(), _other()
        _clip(key="del/never_written")
        source, target = store_factory(), store_factory()
        with source.open("w"):
            source.write(clip, samples(["a", "b"], x=[1, 2]))
            source.write(other, samples(["z"]))
        with source, target.open("w"):
            result = target.copy_metadata(source, filters={"del/clip": ["sample_id = 'a'"]})
            assert result == {"features_copied": 2, "rows_copied": 2}
            assert id_set(target.read(clip)) == {"a"}
            assert id_set(target.read(other)) == {"z"}

    def test_copy_metadata_preserves_old_feature_versions(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip_v1 = _clip("1")
        source, target = store_factory(), store_factory()
        with source.open("w"):
            source.write(clip_v1, samples(["a"], x=[1]))
        with mx.FeatureGraph().use():
            clip_v2 = _clip("2")
            with source, target.open("w"):
                result = target.copy_metadata(source, features=[clip_v2])
                assert result == {"features_copied": 1, "rows_copied": 1}
                copied = rows(target.read(clip_v2, with_feature_history=True), ["sample_id", FEATURE_VERSION])
                assert collect_to_polars(target.read(clip_v2)).height == 0
        assert copied == [{"sample_id": "a", FEATURE_VERSION: clip_v1.feature_version()}]
