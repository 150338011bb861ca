"""Conformance: per-sample error quarantine (``record_failures`` / ``reset_failures`` /
``increment.failed``) and content-based early cutoff (``FeatureSpec(data_version_columns=...)``)."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import ColumnNotFoundError, MetadataSchemaError
from metaxy.frames import collect_to_polars as to_polars
from metaxy.metadata_store.types import FAILURE_COLUMNS
from metaxy.testing.conformance_support import (
    DATA_VERSION,
    DATA_VERSION_BY_FIELD,
    FEATURE_VERSION,
    MATERIALIZATION_ID,
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    ConformanceBase,
    StoreFactory,
    VideoFeatures,
    define_video_features,
    id_set,
    samples,
)
from metaxy.versioning.hashing import hash_string

__all__ = ["EarlyCutoffConformance", "QuarantineConformance"]


def _video(ids: list[str], audio_tag: str = "v1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": ids,
            PROVENANCE_BY_FIELD: [{"audio": f"audio:{i}:{audio_tag}", "frames": f"frames:{i}"} for i in ids],
        }
    )


def _errors(ids: list[str], error: str = "decoder crashed", error_type: str | None = None) -> pl.DataFrame:
    data: dict[str, Any] = {"sample_id": ids, "error": [error] * len(ids)}
    if error_type is not None:
        data["error_type"] = [error_type] * len(ids)
    return pl.DataFrame(data)


class QuarantineConformance(ConformanceBase):
    """Failed samples are recorded in the store and left out of new/stale until their inputs or the
    feature version change, or the failures are reset."""

    def _setup(self, store: Any) -> VideoFeatures:
        vf = define_video_features()
        store.write(vf.video, _video(["a", "b", "c"]))
        return vf

    def test_recorded_failure_moves_sample_from_new_to_failed(self, store_factory: StoreFactory, graph: Any) -> None:
        store = store_factory(materialization_id="run-1")
        with store.open("w"):
            vf = self._setup(store)
            assert len(store.resolve_update(vf.transcript).failed) == 0
            assert store.record_failures(vf.transcript, _errors(["b"], error_type="DecodeError")) == 1
            inc = store.resolve_update(vf.transcript)
            assert id_set(inc.new) == {"a", "c"}
            failed = to_polars(inc.failed)
            assert failed["sample_id"].to_list() == ["b"]
            assert failed.row(0, named=True)["metaxy_error"] == "decoder crashed"
            assert failed.row(0, named=True)["metaxy_error_type"] == "DecodeError"
            assert set(FAILURE_COLUMNS) <= set(failed.columns)
            assert set(to_polars(inc.new).columns) <= set(failed.columns)
            stored = store.read_failures(vf.transcript)
            expected_provenance = to_polars(store.resolve_update(vf.transcript, lazy=True).input)
            by_id = dict(zip(expected_provenance["sample_id"], expected_provenance[PROVENANCE], strict=True))
            row = stored.row(0, named=True)
            assert row[PROVENANCE] == by_id["b"]
            assert row[FEATURE_VERSION] == graph.get_feature_version(vf.transcript.spec().key)
            assert row[MATERIALIZATION_ID] == "run-1"

    def test_lazy_increment_splits_in_its_own_backend_and_collects_alike(
        self, store_factory: StoreFactory, graph: Any
    ) -> None:
        store = store_factory()
        with store.open("w"):
            vf = self._setup(store)
            store.record_failures(vf.transcript, _errors(["a"]))
            lazy = store.resolve_update(vf.transcript, lazy=True)
            assert id_set(lazy.new) == {"b", "c"}
            assert id_set(lazy.failed) == {"a"}
            collected = lazy.collect()
            eager = store.resolve_update(vf.transcript)
            for part in ("new", "stale", "failed"):
                got = to_polars(getattr(collected, part)).drop("metaxy_failed_at", strict=False)
                want = to_polars(getattr(eager, part)).drop("metaxy_failed_at", strict=False)
                assert got.sort("sample_id").to_dicts() == want.sort("sample_id").to_dicts(), part

    def test_stale_sample_is_quarantined_and_retried_when_its_inputs_change(
        self, store_factory: StoreFactory, graph: Any
    ) -> None:
        store = store_factory()
        with store.open("w"):
            vf = self._setup(store)
            store.write(vf.transcript, store.resolve_update(vf.transcript).new)
            store.write(vf.video, _video(["a", "b"], audio_tag="v2"))
            assert id_set(store.resolve_update(vf.transcript).stale) == {"a", "b"}
            store.record_failures(vf.transcript, _errors(["a"]))
            inc = store.resolve_update(vf.transcript)
            assert id_set(inc.stale) == {"b"} and id_set(inc.failed) == {"a"}
            store.write(vf.video, _video(["a"], audio_tag="v3"))  # new input: retry
            inc = store.resolve_update(vf.transcript)
            assert id_set(inc.stale) == {"a", "b"} and len(inc.failed) == 0

    def test_feature_version_change_retries(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with mx.FeatureGraph().use(), store.open("w"):
            vf = self._setup(store)
            store.record_failures(vf.transcript, _errors(["c"]))
            assert id_set(store.resolve_update(vf.transcript).failed) == {"c"}
        with mx.FeatureGraph().use(), store.open("w"):
            vf2 = define_video_features(transcript_code_version="2")
            inc = store.resolve_update(vf2.transcript)
            assert id_set(inc.new) == {"a", "b", "c"} and len(inc.failed) == 0
            assert len(store.read_failures(vf2.transcript, current=True)) == 0
            assert len(store.read_failures(vf2.transcript)) == 1

    def test_reset_all_or_by_filter(self, store_factory: StoreFactory, graph: Any) -> None:
        store = store_factory()
        with store.open("w"):
            vf = self._setup(store)
            store.record_failures(vf.transcript, _errors(["a", "b"]))
            assert store.reset_failures(vf.transcript, filters="sample_id = 'a'") == 1
            assert id_set(store.resolve_update(vf.transcript).failed) == {"b"}
            with pytest.raises(ColumnNotFoundError):
                store.reset_failures(vf.transcript, filters="nope = 1")
            assert store.reset_failures(vf.transcript) == 1
            inc = store.resolve_update(vf.transcript)
            assert id_set(inc.new) == {"a", "b", "c"} and len(inc.failed) == 0
            assert store.reset_failures(vf.transcript) == 0
            assert vf.transcript.spec().key not in store.features_with_failures()

    def test_root_feature_failures_from_the_increment_rows(self, store_factory: StoreFactory, graph: Any) -> None:
        store = store_factory()
        with store.open("w"):
            vf = define_video_features()
            expected = samples(["x", "y"], fields=("audio", "frames"))
            inc = store.resolve_update(vf.video, samples=expected)
            bad = to_polars(inc.new).filter(pl.col("sample_id") == "y").with_columns(error=pl.lit("corrupt file"))
            store.record_failures(vf.video, bad)
            again = store.resolve_update(vf.video, samples=expected)
            assert id_set(again.new) == {"x"} and id_set(again.failed) == {"y"}
            changed = samples(["x", "y"], fields=("audio", "frames"), tag="v2")
            assert id_set(store.resolve_update(vf.video, samples=changed).new) == {"x", "y"}

    @pytest.mark.parametrize(
        ("frame", "message"),
        [
            (pl.DataFrame({"sample_id": ["a"]}), "no column(s) ['error']"),
            (pl.DataFrame({"error": ["x"]}), "no column(s) ['sample_id']"),
            (pl.DataFrame({"sample_id": [None, "a"], "error": ["x", "y"]}), "null 'sample_id'"),
            (
                pl.DataFrame(
                    {"sample_id": ["a"], "error": [None]}, schema={"sample_id": pl.String, "error": pl.String}
                ),
                "null 'error'",
            ),
            (pl.DataFrame({"sample_id": ["a", "a"], "error": ["x", "y"]}), "more than once"),
            (pl.DataFrame({"sample_id": ["zz"], "error": ["x"]}), "not expected samples"),
            (pl.DataFrame({"sample_id": ["a"], "error": [3]}), "must be a string column"),
        ],
    )
    def test_bad_failures_frame_is_refused_and_nothing_written(
        self, store_factory: StoreFactory, graph: Any, frame: pl.DataFrame, message: str
    ) -> None:
        store = store_factory()
        with store.open("w"):
            vf = self._setup(store)
            with pytest.raises(
                MetadataSchemaError,
                match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]"),
            ):
                store.record_failures(vf.transcript, frame)
            assert store.read_failures(vf.transcript).height == 0
            assert vf.transcript.spec().key not in store.features_with_failures()

    def test_integer_ids_given_in_another_width_are_matched(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with mx.FeatureGraph().use(), store.open("w"):

            class Item(mx.BaseFeature, spec=mx.FeatureSpec(key="item", id_columns=["n"])):
                n: int

            class Derived(mx.BaseFeature, spec=mx.FeatureSpec(key="derived", id_columns=["n"], deps=[Item])):
                n: int

            store.write(Item, pl.DataFrame({"n": [1, 2], PROVENANCE_BY_FIELD: [{"default": "1"}, {"default": "2"}]}))
            failures = pl.DataFrame({"n": [2], "error": ["x"]}, schema={"n": pl.Int32, "error": pl.String})
            store.record_failures(Derived, failures)
            inc = store.resolve_update(Derived)
            assert to_polars(inc.new)["n"].to_list() == [1] and to_polars(inc.failed)["n"].to_list() == [2]
            with pytest.raises(MetadataSchemaError, match="cannot be cast"):
                store.record_failures(Derived, pl.DataFrame({"n": ["two"], "error": ["x"]}))

    def test_root_feature_without_provenance_is_refused(self, store_factory: StoreFactory, graph: Any) -> None:
        store = store_factory()
        with store.open("w"):
            vf = self._setup(store)
            with pytest.raises(MetadataSchemaError, match="root feature") as info:
                store.record_failures(vf.video, _errors(["a"]))
            assert "Hint:" in str(info.value)
            assert store.read_failures(vf.video).height == 0


def _cutoff_features(code_version: str = "1") -> tuple[type[mx.BaseFeature], ...]:
    class Audio(mx.BaseFeature, spec=mx.FeatureSpec(key="audio", id_columns=["sample_id"], fields=["audio"])):
        sample_id: str

    class Transcript(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="transcript",
            id_columns=["sample_id"],
            deps=[Audio],
            fields=[mx.FieldSpec(key="text", code_version=code_version)],
            data_version_columns=["text"],
        ),
    ):
        sample_id: str

    class Summary(mx.BaseFeature, spec=mx.FeatureSpec(key="summary", id_columns=["sample_id"], deps=[Transcript])):
        sample_id: str

    return Audio, Transcript, Summary


def _audio(tag: str) -> pl.DataFrame:
    return pl.DataFrame({"sample_id": ["a", "b"], PROVENANCE_BY_FIELD: [{"audio": f"a:{tag}"}, {"audio": f"b:{tag}"}]})


class EarlyCutoffConformance(ConformanceBase):
    """A feature's data version hashed from its written content: unchanged content keeps the
    downstream up to date."""

    def _transcribe(self, store: Any, feature: Any, texts: dict[str, str], part: str = "new") -> None:
        inc = to_polars(getattr(store.resolve_update(feature), part))
        store.write(feature, inc.with_columns(text=pl.col("sample_id").replace_strict(texts)))

    def test_content_hash_is_the_data_version(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with mx.FeatureGraph().use(), store.open("w"):
            audio, transcript, _ = _cutoff_features()
            store.write(audio, _audio("v1"))
            self._transcribe(store, transcript, {"a": "hello", "b": "world"})
            stored = to_polars(store.read(transcript)).sort("sample_id")
            for row in stored.iter_rows(named=True):
                content = json.dumps({"text": row["text"]}, separators=(",", ":"))
                expected = hash_string(store.hash_algorithm, content)
                assert row[DATA_VERSION_BY_FIELD]["text"] == expected
                assert row[DATA_VERSION] == hash_string(store.hash_algorithm, expected)
                assert row[DATA_VERSION] != row[PROVENANCE]

    def test_unchanged_content_keeps_downstream_up_to_date(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with mx.FeatureGraph().use(), store.open("w"):
            audio, transcript, summary = _cutoff_features()
            store.write(audio, _audio("v1"))
            self._transcribe(store, transcript, {"a": "hello", "b": "world"})
            store.write(summary, store.resolve_update(summary).new)
            store.write(audio, _audio("v2"))  # re-encoded: every transcript recomputes
            assert id_set(store.resolve_update(transcript).stale) == {"a", "b"}
            self._transcribe(store, transcript, {"a": "hello", "b": "world, changed"}, part="stale")
            inc = store.resolve_update(summary)
            assert id_set(inc.stale) == {"b"} and len(inc.new) == 0

    def test_user_supplied_data_version_wins(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with mx.FeatureGraph().use(), store.open("w"):
            audio, transcript, _ = _cutoff_features()
            store.write(audio, _audio("v1"))
            new = to_polars(store.resolve_update(transcript).new)
            given = new.with_columns(
                text=pl.lit("t"), **{DATA_VERSION_BY_FIELD: pl.struct(text=pl.lit("mine-") + pl.col("sample_id"))}
            )
            store.write(transcript, given)
            versions = to_polars(store.read(transcript)).sort("sample_id")[DATA_VERSION_BY_FIELD].to_list()
            assert versions == [{"text": "mine-a"}, {"text": "mine-b"}]

    def test_missing_content_column_is_refused_and_nothing_written(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with mx.FeatureGraph().use(), store.open("w"):
            audio, transcript, _ = _cutoff_features()
            store.write(audio, _audio("v1"))
            with pytest.raises(MetadataSchemaError, match=r"columns \['text'\]"):
                store.write(transcript, store.resolve_update(transcript).new)
            assert not store.has_feature(transcript)

    def test_code_change_is_not_cut_off_and_rebase_is_the_escape_hatch(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with mx.FeatureGraph().use(), store.open("w"):
            audio, transcript, summary = _cutoff_features("1")
            store.write(audio, _audio("v1"))
            self._transcribe(store, transcript, {"a": "hello", "b": "world"})
            store.write(summary, store.resolve_update(summary).new)
            old_summary_version = summary.feature_version()
        with mx.FeatureGraph().use(), store.open("w"):
            audio, transcript, summary = _cutoff_features("2")  # a refactor: same output
            assert id_set(store.resolve_update(transcript).new) == {"a", "b"}
            self._transcribe(store, transcript, {"a": "hello", "b": "world"})
            # the summary's feature version includes the transcript's code: every summary is new
            assert id_set(store.resolve_update(summary).new) == {"a", "b"}
            stored = store.read(summary, feature_version=old_summary_version, with_feature_history=True)
            store.write(summary, store.rebase(summary, stored), preserve_feature_version=True)
            inc = store.resolve_update(summary)
            assert len(inc.new) == 0 and len(inc.stale) == 0
