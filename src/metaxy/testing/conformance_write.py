"""Conformance: ``write`` / ``write_multi`` -- accepted inputs and system-column rules (spec §4, §5.3)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import MetadataSchemaError, MetaxyWarning
from metaxy.frames import collect_to_polars
from metaxy.testing.conformance_support import (
    CREATED_AT,
    DATA_VERSION,
    DATA_VERSION_BY_FIELD,
    DELETED_AT,
    FEATURE_VERSION,
    MATERIALIZATION_ID,
    PROJECT_VERSION,
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    UPDATED_AT,
    ConformanceBase,
    StoreFactory,
    define_video_features,
    rows,
    sample_provenance,
    samples,
)

__all__ = ["WriteConformance"]

_FIELDS = ("audio", "frames")
_UTC = pl.Datetime("us", "UTC")


def _clip() -> type[mx.BaseFeature]:
    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="write/clip", id_columns=["sample_id"], fields=list(_FIELDS))):
        sample_id: str
        x: int | None = None

    return Clip


def _convert(frame: pl.DataFrame, kind: str) -> Any:
    if kind == "polars":
        return frame
    if kind == "polars_lazy":
        return frame.lazy()
    if kind == "narwhals":
        return nw.from_native(frame, eager_only=True)
    if kind == "pandas":
        return frame.to_pandas(use_pyarrow_extension_array=True)
    if kind == "pyarrow":
        return frame.to_arrow()
    raise AssertionError(kind)


def _by_id(frame: Any) -> dict[str, dict[str, Any]]:
    return {r["sample_id"]: r for r in rows(frame)}


def _struct(values: list[dict[str, str] | None]) -> pl.Series:
    return pl.Series(values, dtype=pl.Struct(dict.fromkeys(_FIELDS, pl.String)))


class WriteConformance(ConformanceBase):
    @pytest.mark.parametrize("kind", ["polars", "polars_lazy", "narwhals", "pandas", "pyarrow"])
    def test_write_accepts_common_frame_libraries(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, kind: str
    ) -> None:
        clip = _clip()
        frame = samples(["a", "b"], _FIELDS, x=[1, 2])
        store = store_factory()
        with store.open("w"):
            store.write(clip, _convert(frame, kind))
            got = rows(store.read(clip), ["sample_id", "x", PROVENANCE_BY_FIELD])
        assert got == rows(frame, ["sample_id", "x", PROVENANCE_BY_FIELD])

    def test_system_columns_are_filled_on_write(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"], _FIELDS, x=[1]))
            (row,) = rows(store.read(clip))
        by_field = {"audio": "audio:a:v1", "frames": "frames:a:v1"}
        assert row[PROVENANCE_BY_FIELD] == by_field
        assert row[PROVENANCE] == sample_provenance(store.hash_algorithm, by_field)
        assert row[DATA_VERSION_BY_FIELD] == by_field
        assert row[DATA_VERSION] == row[PROVENANCE]
        assert row[FEATURE_VERSION] == clip.feature_version()
        assert row[PROJECT_VERSION] == graph.project_version
        for column in (CREATED_AT, UPDATED_AT):
            assert isinstance(row[column], datetime)
            assert row[column].utcoffset() == timedelta(0)
        assert row[DELETED_AT] is None
        assert row[MATERIALIZATION_ID] is None

    def test_given_provenance_is_kept(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"], _FIELDS).with_columns(pl.lit("given").alias(PROVENANCE)))
            (row,) = rows(store.read(clip))
        assert row[PROVENANCE] == "given"

    def test_data_version_copies_provenance_when_by_field_is_absent(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            # A lone metaxy_data_version (without the by-field struct) is overwritten.
            store.write(clip, samples(["a"], _FIELDS).with_columns(pl.lit("ignored").alias(DATA_VERSION)))
            (row,) = rows(store.read(clip))
        assert row[DATA_VERSION_BY_FIELD] == row[PROVENANCE_BY_FIELD]
        assert row[DATA_VERSION] == row[PROVENANCE]

    def test_data_version_by_field_null_rows_are_filled_and_data_version_hashed(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        override = {"audio": "content-audio", "frames": "content-frames"}
        frame = samples(["a", "b"], _FIELDS).with_columns(_struct([override, None]).alias(DATA_VERSION_BY_FIELD))
        store = store_factory()
        with store.open("w"):
            store.write(clip, frame)
            got = _by_id(store.read(clip))
        algo = store.hash_algorithm
        assert got["a"][DATA_VERSION_BY_FIELD] == override
        assert got["a"][DATA_VERSION] == sample_provenance(algo, override)
        assert got["a"][PROVENANCE] == sample_provenance(algo, got["a"][PROVENANCE_BY_FIELD])
        assert got["b"][DATA_VERSION_BY_FIELD] == got["b"][PROVENANCE_BY_FIELD]
        assert got["b"][DATA_VERSION] == got["b"][PROVENANCE]

    def test_given_data_version_is_kept_and_its_null_rows_filled(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        override = {"audio": "content-audio", "frames": "content-frames"}
        frame = samples(["a", "b"], _FIELDS).with_columns(
            _struct([override, None]).alias(DATA_VERSION_BY_FIELD),
            pl.Series(DATA_VERSION, ["content-sample", None], dtype=pl.String),
        )
        store = store_factory()
        with store.open("w"):
            store.write(clip, frame)
            got = _by_id(store.read(clip))
        assert got["a"][DATA_VERSION] == "content-sample"
        assert got["b"][DATA_VERSION] == got["b"][PROVENANCE]
        assert got["b"][DATA_VERSION_BY_FIELD] == got["b"][PROVENANCE_BY_FIELD]

    def test_created_at_is_kept_and_updated_at_always_set(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        created = datetime(2020, 1, 1, tzinfo=UTC)
        stale_update = datetime(2000, 1, 1, tzinfo=UTC)
        frame = samples(["a"], _FIELDS).with_columns(
            pl.lit(created, dtype=_UTC).alias(CREATED_AT), pl.lit(stale_update, dtype=_UTC).alias(UPDATED_AT)
        )
        store = store_factory()
        with store.open("w"):
            store.write(clip, frame)
            store.write(clip, samples(["b"], _FIELDS))
            got = _by_id(store.read(clip))
        assert got["a"][CREATED_AT] == created
        assert got["a"][UPDATED_AT] > stale_update
        assert got["b"][CREATED_AT] is not None
        assert got["b"][UPDATED_AT] > got["a"][UPDATED_AT]

    def test_updated_at_strictly_increases_with_each_write(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        store = store_factory()
        with store.open("w"):
            for x in range(4):
                store.write(clip, samples(["a"], _FIELDS, x=[x]))
            history = collect_to_polars(store.read(clip, with_sample_history=True)).sort("x")
        stamps = history.get_column(UPDATED_AT).to_list()
        assert all(earlier < later for earlier, later in pairwise(stamps))

    def test_materialization_id_comes_from_the_argument_or_the_store_default(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        from_input = pl.lit("from-input").alias(MATERIALIZATION_ID)
        store = store_factory(materialization_id="run-default")
        with store.open("w"):
            store.write(clip, samples(["a"], _FIELDS))
            store.write(clip, samples(["b"], _FIELDS).with_columns(from_input), materialization_id="run-b")
            store.write(clip, samples(["c"], _FIELDS).with_columns(from_input))
            got = {k: r[MATERIALIZATION_ID] for k, r in _by_id(store.read(clip)).items()}
        assert got == {"a": "run-default", "b": "run-b", "c": "run-default"}
        bare = store_factory()
        with bare.open("w"):
            bare.write(clip, samples(["a"], _FIELDS).with_columns(from_input))
            (row,) = rows(bare.read(clip))
        assert row[MATERIALIZATION_ID] is None

    def test_feature_and_project_versions_are_stamped(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        frame = samples(["a"], _FIELDS).with_columns(
            pl.lit("bogus-feature").alias(FEATURE_VERSION), pl.lit("bogus-project").alias(PROJECT_VERSION)
        )
        store = store_factory()
        with store.open("w"):
            store.write(clip, frame)
            (row,) = rows(store.read(clip))
        assert row[FEATURE_VERSION] == clip.feature_version()
        assert row[PROJECT_VERSION] == graph.project_version

    def test_preserve_feature_version_keeps_given_versions(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _clip()
        old = samples(["a"], _FIELDS).with_columns(
            pl.lit("old-feature").alias(FEATURE_VERSION), pl.lit("old-project").alias(PROJECT_VERSION)
        )
        only_feature = samples(["b"], _FIELDS).with_columns(pl.lit("old-feature").alias(FEATURE_VERSION))
        store = store_factory()
        with store.open("w"):
            store.write(clip, old, preserve_feature_version=True)
            # Both versions must be given for them to be preserved.
            store.write(clip, only_feature, preserve_feature_version=True)
            current = _by_id(store.read(clip))
            preserved = rows(store.read(clip, with_feature_history=True, feature_version="old-feature"))
        assert set(current) == {"b"}
        assert current["b"][FEATURE_VERSION] == clip.feature_version()
        assert [(r["sample_id"], r[PROJECT_VERSION]) for r in preserved] == [("a", "old-project")]

    def test_missing_provenance_column_is_rejected(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        frame = samples(["a"], _FIELDS).drop(PROVENANCE_BY_FIELD)
        store = store_factory()
        with store.open("w"):
            with pytest.raises(MetadataSchemaError, match=PROVENANCE_BY_FIELD):
                store.write(clip, frame)
            with pytest.raises(MetadataSchemaError, match=PROVENANCE_BY_FIELD):
                store.write_multi({clip: frame})
            assert store.has_feature(clip) is False

    def test_provenance_column_must_be_a_struct(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _clip()
        frame = samples(["a"], _FIELDS).with_columns(pl.lit("not-a-struct").alias(PROVENANCE_BY_FIELD))
        store = store_factory()
        with store.open("w"):
            with pytest.raises(MetadataSchemaError):
                store.write(clip, frame)
            assert store.has_feature(clip) is False

    def test_dependent_rows_without_sample_provenance_warn(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"):
            with warnings.catch_warnings():
                warnings.simplefilter("error", MetaxyWarning)
                store.write(vf.video, samples(["a"], _FIELDS))  # a root: computing it is normal
            with pytest.warns(MetaxyWarning, match=PROVENANCE):
                store.write(vf.transcript, samples(["a"], ("text",)))
            (row,) = rows(store.read(vf.transcript))
        assert row[PROVENANCE] == sample_provenance(store.hash_algorithm, {"text": "text:a:v1"})

    def test_write_multi_writes_dependents_first(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"):
            store.write_multi(
                {
                    vf.video: samples(["a"], _FIELDS),
                    vf.transcript: samples(["a"], ("text",)).with_columns(pl.lit("p-text").alias(PROVENANCE)),
                    vf.faces: samples(["a"], ("faces",)).with_columns(pl.lit("p-faces").alias(PROVENANCE)),
                }
            )
            stamps = {
                name: rows(store.read(feature))[0][UPDATED_AT]
                for name, feature in (("video", vf.video), ("transcript", vf.transcript), ("faces", vf.faces))
            }
        # Reverse topological order: both dependents are written before their upstream.
        assert stamps["transcript"] < stamps["video"]
        assert stamps["faces"] < stamps["video"]
