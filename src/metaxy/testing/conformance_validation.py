"""Conformance: bad input raises a typed error *before* anything is written (DESIGN "Errors").

Every test records the store's full contents (all versions, all history, soft-deleted rows),
makes the failing call, and proves the contents did not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import (
    FeatureNotFoundError,
    FeatureNotInGraphError,
    FilterParseError,
    InvalidRenameError,
    MetadataSchemaError,
)
from metaxy.testing.conformance_support import (
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    ConformanceBase,
    StoreFactory,
    VideoFeatures,
    define_video_features,
    samples,
    video_contents,
)

__all__ = ["ValidationConformance"]

_FIELDS = ("audio", "frames")
_INJECTION = "sample_id = 'a'; DROP TABLE video"


def _missing_id(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("sample_id")


def _missing_provenance(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop(PROVENANCE_BY_FIELD)


def _string_provenance(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit("audio:c:v1").alias(PROVENANCE_BY_FIELD))


def _non_string_struct(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.struct(audio=pl.lit(1), frames=pl.lit(2)).alias(PROVENANCE_BY_FIELD))


def _struct_lacking_a_field(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.struct(audio=pl.lit("audio:c:v1")).alias(PROVENANCE_BY_FIELD))


_BAD_FRAMES: dict[str, Callable[[pl.DataFrame], pl.DataFrame]] = {
    "missing-id-column": _missing_id,
    "missing-provenance-column": _missing_provenance,
    "provenance-is-a-string": _string_provenance,
    "provenance-struct-of-integers": _non_string_struct,
    "provenance-struct-lacks-a-field": _struct_lacking_a_field,
}


def _populated(store: Any) -> VideoFeatures:
    """Video a, b, c (a rewritten, c soft-deleted) and transcripts for a, b."""
    vf = define_video_features()
    with store.open("w"):
        store.write(vf.video, samples(["a", "b", "c"], _FIELDS, path=["a.mp4", "b.mp4", "c.mp4"]))
        store.write(vf.video, samples(["a"], _FIELDS, tag="v2", path=["a2.mp4"]))
        store.delete(vf.video, nw.col("sample_id") == "c")
        store.write(vf.transcript, store.resolve_update(vf.transcript).new)
    return vf


class ValidationConformance(ConformanceBase):
    @pytest.mark.parametrize("case", sorted(_BAD_FRAMES))
    def test_bad_frame_is_rejected_before_writing(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, case: str
    ) -> None:
        store = store_factory()
        vf = _populated(store)
        before = video_contents(store, vf)
        bad = _BAD_FRAMES[case](samples(["c", "d"], _FIELDS, path=["c.mp4", "d.mp4"]))
        with store.open("w"), pytest.raises(MetadataSchemaError):
            store.write(vf.video, bad)
        assert video_contents(store, vf) == before

    @pytest.mark.parametrize("case", sorted(_BAD_FRAMES))
    def test_bad_frame_in_write_multi_writes_no_feature(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, case: str
    ) -> None:
        store = store_factory()
        vf = _populated(store)
        before = video_contents(store, vf)
        good_faces = samples(["a", "b"], ("faces",)).with_columns(pl.lit("p-faces").alias(PROVENANCE))
        bad_video = _BAD_FRAMES[case](samples(["d"], _FIELDS, path=["d.mp4"]))
        # The bad frame belongs to the upstream, which write_multi writes last: it must be
        # validated before the (valid) dependent is written.
        with store.open("w"), pytest.raises(MetadataSchemaError):
            store.write_multi({vf.video: bad_video, vf.faces: good_faces})
        assert video_contents(store, vf) == before

    def test_unknown_feature_key_is_rejected(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        vf = _populated(store)
        before = video_contents(store, vf)
        with store.open("w"):
            with pytest.raises(FeatureNotInGraphError):
                store.write("does/not/exist", samples(["a"]))
            # A delete may name a feature no longer in the graph; it finds no table either way.
            with pytest.raises((FeatureNotInGraphError, FeatureNotFoundError)):
                store.delete("does/not/exist", None, soft=False)
            with pytest.raises(KeyError):  # FeatureNotInGraphError is a KeyError
                store.write(mx.FeatureKey("does/not/exist"), samples(["a"]))
        assert video_contents(store, vf) == before

    @pytest.mark.parametrize("soft", [True, False], ids=["soft", "hard"])
    def test_filter_injection_in_delete_is_rejected(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, soft: bool
    ) -> None:
        store = store_factory()
        vf = _populated(store)
        before = video_contents(store, vf)
        with store.open("w"):
            with pytest.raises(FilterParseError):
                store.delete(vf.video, _INJECTION, soft=soft)
            with pytest.raises(FilterParseError):
                store.delete(vf.video, [_INJECTION], soft=soft)
        assert video_contents(store, vf) == before

    def test_filter_injection_in_reads_and_resolves_is_rejected(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        vf = _populated(store)
        before = video_contents(store, vf)
        with store.open("w"):
            with pytest.raises(FilterParseError):
                store.read(vf.video, filters=[_INJECTION])
            with pytest.raises(FilterParseError):
                store.resolve_update(vf.transcript, filters={vf.video: [_INJECTION]})
            with pytest.raises(FilterParseError):
                store.resolve_update(vf.transcript, global_filters=[_INJECTION])
            with pytest.raises(FilterParseError):
                store.resolve_update(vf.transcript, target_filters=[_INJECTION])
            with pytest.raises(FilterParseError):
                store.resolve_update(vf.transcript, staleness_predicates=[_INJECTION])
        assert video_contents(store, vf) == before

    def test_rename_onto_a_system_column_is_rejected(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        vf = _populated(store)

        class Renamed(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="renamed",
                id_columns=["sample_id"],
                deps=[mx.FeatureDep(feature=vf.video, rename={"path": "metaxy_provenance"})],
            ),
        ):
            sample_id: str

        before = video_contents(store, vf)
        with store.open("w"), pytest.raises(InvalidRenameError, match="system column"):
            store.resolve_update(Renamed)
        assert video_contents(store, vf) == before
        with store:
            assert store.has_feature(Renamed) is False
