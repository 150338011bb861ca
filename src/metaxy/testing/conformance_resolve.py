"""Conformance: ``resolve_update`` -- new / stale / orphaned, samples, filters, predicates, hash
algorithms (spec §3.3-§3.6, §3.10, §5.4, §9.2, §9.10)."""

from __future__ import annotations

import warnings
from typing import Any

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.errors import (
    FeatureNotFoundError,
    HashAlgorithmNotSupportedError,
    PolarsMaterializationWarning,
    RootFeatureError,
    StoreCapabilityError,
    VersioningEngineMismatchError,
)
from metaxy.frames import collect_to_polars
from metaxy.metadata_store.types import Increment, LazyIncrement
from metaxy.testing.conformance_support import (
    CREATED_AT,
    DATA_VERSION,
    DATA_VERSION_BY_FIELD,
    FEATURE_VERSION,
    PROJECT_VERSION,
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    UPDATED_AT,
    ConformanceBase,
    StoreFactory,
    VideoFeatures,
    define_video_features,
    expected_transcript,
    id_set,
    rows,
    sample_provenance,
    samples,
)
from metaxy.versioning.hashing import HashAlgorithm, hash_string

__all__ = ["ResolveConformance"]

_FIELDS = ("audio", "frames")
_VERSIONING = (PROVENANCE_BY_FIELD, PROVENANCE, DATA_VERSION_BY_FIELD, DATA_VERSION)


def _video_frame(ids: list[str], audio_tag: str = "v1", frames_tag: str = "v1") -> pl.DataFrame:
    """Video rows whose audio / frames provenance carry independent tags."""
    return pl.DataFrame(
        {
            "sample_id": ids,
            PROVENANCE_BY_FIELD: [
                {"audio": f"audio:{i}:{audio_tag}", "frames": f"frames:{i}:{frames_tag}"} for i in ids
            ],
        }
    )


def _setup(store: Any, ids: tuple[str, ...] = ("a", "b", "c")) -> VideoFeatures:
    vf = define_video_features()
    store.write(vf.video, _video_frame(list(ids)))
    return vf


def _materialise(store: Any, *features: type[mx.BaseFeature]) -> None:
    for feature in features:
        inc = store.resolve_update(feature)
        store.write(feature, inc.new)
        store.write(feature, inc.stale)


def _by_id(frame: Any) -> dict[str, dict[str, Any]]:
    return {r["sample_id"]: r for r in rows(frame)}


def _empty(inc: Increment) -> bool:
    return len(inc.new) == 0 and len(inc.stale) == 0 and len(inc.orphaned) == 0


class ResolveConformance(ConformanceBase):
    # --- the basics --------------------------------------------------------------------------------

    def test_fresh_downstream_is_all_new_with_expected_provenance(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store)
            inc = store.resolve_update(vf.transcript)
        assert isinstance(inc, Increment)
        assert id_set(inc.new) == {"a", "b", "c"}
        assert len(inc.new) == 3
        assert len(inc.stale) == 0
        assert len(inc.orphaned) == 0
        columns = set(collect_to_polars(inc.new).columns)
        assert {"sample_id", *_VERSIONING} <= columns
        assert not columns & {FEATURE_VERSION, PROJECT_VERSION, CREATED_AT, UPDATED_AT}
        algo = store.hash_algorithm
        for sample_id, row in _by_id(inc.new).items():
            by_field = {"text": expected_transcript(algo, f"audio:{sample_id}:v1")}
            assert row[PROVENANCE_BY_FIELD] == by_field
            assert row[PROVENANCE] == sample_provenance(algo, by_field)
            assert row[DATA_VERSION_BY_FIELD] == by_field
            assert row[DATA_VERSION] == row[PROVENANCE]

    def test_written_increment_resolves_to_nothing(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store)
            _materialise(store, vf.transcript, vf.faces)
            assert _empty(store.resolve_update(vf.transcript))
            assert _empty(store.resolve_update(vf.faces))
            assert rows(store.read(vf.transcript), ["sample_id"]) == [{"sample_id": s} for s in "abc"]

    def test_field_level_isolation(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store)
            _materialise(store, vf.transcript, vf.faces)
            # Only the audio of "a" changes; its frames keep their data version.
            store.write(vf.video, _video_frame(["a"], audio_tag="v2"))
            transcript = store.resolve_update(vf.transcript)
            faces = store.resolve_update(vf.faces)
        assert id_set(transcript.stale) == {"a"}
        assert len(transcript.stale) == 1
        assert len(transcript.new) == 0
        assert len(transcript.orphaned) == 0
        (row,) = rows(transcript.stale)
        assert row[PROVENANCE_BY_FIELD] == {"text": expected_transcript(store.hash_algorithm, "audio:a:v2")}
        assert _empty(faces)

    def test_removed_upstream_samples_are_orphaned(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store)
            _materialise(store, vf.transcript)
            stored = _by_id(store.read(vf.transcript))
            store.delete(vf.video, nw.col("sample_id") == "c")
            inc = store.resolve_update(vf.transcript)
        assert len(inc.new) == 0
        assert len(inc.stale) == 0
        assert id_set(inc.orphaned) == {"c"}
        (row,) = rows(inc.orphaned)
        assert row[PROVENANCE] == stored["c"][PROVENANCE]

    def test_missing_upstream_table_raises(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"), pytest.raises(FeatureNotFoundError):
            store.resolve_update(vf.transcript)

    # --- roots and samples -------------------------------------------------------------------------

    def test_root_feature_without_samples_raises(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"):
            with pytest.raises(RootFeatureError, match="root feature"):
                store.resolve_update(vf.video)
            with pytest.raises(ValueError, match="root feature"):
                store.resolve_update(vf.video)

    def test_root_feature_samples_are_compared_with_stored_rows(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store, ("a", "b", "d"))
            incoming = pl.concat([_video_frame(["a", "c"]), _video_frame(["b"], audio_tag="v2")])
            inc = store.resolve_update(vf.video, samples=incoming)
        assert id_set(inc.new) == {"c"}
        assert id_set(inc.stale) == {"b"}
        assert id_set(inc.orphaned) == {"d"}
        (new,) = rows(inc.new)
        assert new[PROVENANCE] == sample_provenance(store.hash_algorithm, new[PROVENANCE_BY_FIELD])
        assert new[DATA_VERSION_BY_FIELD] == new[PROVENANCE_BY_FIELD]

    def test_root_samples_against_an_empty_store_are_all_new(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"):
            inc = store.resolve_update(vf.video, samples=_video_frame(["a", "b"]))
        assert id_set(inc.new) == {"a", "b"}
        assert len(inc.stale) == 0
        assert len(inc.orphaned) == 0

    def test_samples_for_a_dependent_bypass_the_upstream(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"):
            # No video table exists: with samples given, the upstream is never read.
            inc = store.resolve_update(vf.transcript, samples=samples(["a", "b"], ("text",)))
        assert id_set(inc.new) == {"a", "b"}

    # --- filters -----------------------------------------------------------------------------------

    @pytest.mark.parametrize("use_sql", [False, True], ids=["narwhals", "sql"])
    def test_runtime_filters_restrict_the_upstream(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, use_sql: bool
    ) -> None:
        store = store_factory()
        not_a = "sample_id != 'a'" if use_sql else nw.col("sample_id") != "a"
        with store.open("w"):
            vf = _setup(store)
            by_class = store.resolve_update(vf.transcript, filters={vf.video: [not_a]})
            by_key = store.resolve_update(vf.transcript, filters={"video": [not_a]})
        assert id_set(by_class.new) == {"b", "c"}
        assert id_set(by_key.new) == {"b", "c"}

    def test_a_polars_filter_falls_back_with_a_warning_at_the_caller(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        """A store that resolves in its engine warns when a Polars expression sends the resolve to
        Polars; the warning names the line that called ``resolve_update``. A store that resolves in
        Polars only takes the expression without a warning and refuses ``versioning_engine="native"``."""
        store = store_factory()
        if not store.capabilities.native_resolve:
            with store.open("w"), warnings.catch_warnings():
                warnings.simplefilter("error", PolarsMaterializationWarning)
                vf = _setup(store)
                inc = store.resolve_update(vf.transcript, filters={vf.video: [nw.col("sample_id") != "a"]})
                with pytest.raises(VersioningEngineMismatchError, match=r"no native versioning engine.*Hint"):
                    store.resolve_update(vf.transcript, versioning_engine="native")
            assert id_set(inc.new) == {"b", "c"}
            return
        with store.open("w"):
            vf = _setup(store)
            with pytest.warns(PolarsMaterializationWarning, match="a filter on 'video' is a Polars expression") as rec:
                inc = store.resolve_update(vf.transcript, filters={vf.video: [nw.col("sample_id") != "a"]})
            with pytest.raises(VersioningEngineMismatchError, match="Polars expression"):
                store.resolve_update(
                    vf.transcript, filters={vf.video: [nw.col("sample_id") != "a"]}, versioning_engine="native"
                )
        assert id_set(inc.new) == {"b", "c"}
        assert {w.filename for w in rec} == {__file__}

    def test_global_filters_apply_to_upstream_and_target(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        not_a = nw.col("sample_id") != "a"
        with store.open("w"):
            vf = _setup(store)
            _materialise(store, vf.transcript)
            store.write(vf.video, _video_frame(["a", "b", "c"], audio_tag="v2"))
            upstream_only = store.resolve_update(vf.transcript, filters={vf.video: [not_a]})
            everywhere = store.resolve_update(vf.transcript, global_filters=[not_a])
        # Filtering only the upstream makes the stored "a" look orphaned ...
        assert id_set(upstream_only.stale) == {"b", "c"}
        assert id_set(upstream_only.orphaned) == {"a"}
        # ... a global filter hides it on both sides.
        assert id_set(everywhere.stale) == {"b", "c"}
        assert len(everywhere.new) == 0
        assert len(everywhere.orphaned) == 0

    def test_target_filters_apply_to_stored_rows_only(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store)
            _materialise(store, vf.transcript)
            inc = store.resolve_update(vf.transcript, target_filters=["sample_id != 'a'"])
        # The stored "a" is filtered away, so the expected "a" has no match.
        assert id_set(inc.new) == {"a"}
        assert len(inc.stale) == 0
        assert len(inc.orphaned) == 0

    # --- modes -------------------------------------------------------------------------------------

    def test_lazy_increment_matches_the_eager_one(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store, ("a", "b", "c", "d"))
            store.write(vf.transcript, store.resolve_update(vf.transcript, filters={vf.video: ["sample_id < 'c'"]}).new)
            store.write(vf.video, _video_frame(["a"], audio_tag="v2"))
            store.delete(vf.video, nw.col("sample_id") == "b")
            eager = store.resolve_update(vf.transcript)
            lazy = store.resolve_update(vf.transcript, lazy=True)
            assert isinstance(lazy, LazyIncrement)
            assert isinstance(lazy.new, nw.LazyFrame)
            assert lazy.input is not None
            assert id_set(lazy.input) == {"a", "c", "d"}
            collected = lazy.collect()
        assert id_set(eager.new) == {"c", "d"}
        assert id_set(eager.stale) == {"a"}
        assert id_set(eager.orphaned) == {"b"}
        for name in ("new", "stale", "orphaned"):
            assert rows(getattr(collected, name)) == rows(getattr(eager, name)), name

    def test_skip_comparison_makes_everything_new(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store)
            _materialise(store, vf.transcript)
            inc = store.resolve_update(vf.transcript, skip_comparison=True)
            stored = collect_to_polars(store.read(vf.transcript)).schema
        assert id_set(inc.new) == {"a", "b", "c"}
        assert len(inc.stale) == 0
        assert len(inc.orphaned) == 0
        # still the stored rows' columns, as when the comparison runs
        assert collect_to_polars(inc.orphaned).schema == stored

    # --- staleness predicates (§9.10) --------------------------------------------------------------

    def _with_quality(self, store: Any) -> VideoFeatures:
        vf = _setup(store, ("a", "b", "c", "d"))
        new = collect_to_polars(store.resolve_update(vf.transcript, filters={vf.video: ["sample_id != 'd'"]}).new)
        quality = {"a": 0.1, "b": 0.9, "c": 0.2}
        store.write(vf.transcript, new.with_columns(pl.col("sample_id").replace_strict(quality).alias("quality")))
        store.write(vf.video, _video_frame(["c"], audio_tag="v2"))  # "c" is stale by provenance too
        return vf

    @pytest.mark.parametrize("use_sql", [False, True], ids=["narwhals", "sql"])
    def test_staleness_predicates_mark_stored_rows_stale(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph, use_sql: bool
    ) -> None:
        store = store_factory()
        low = "quality < 0.5" if use_sql else nw.col("quality") < 0.5
        with store.open("w"):
            vf = self._with_quality(store)
            inc = store.resolve_update(vf.transcript, staleness_predicates=[low])
        assert id_set(inc.new) == {"d"}
        assert id_set(inc.stale) == {"a", "c"}
        assert len(inc.stale) == 2  # "c" is stale twice over but listed once
        by_id = _by_id(inc.stale)
        algo = store.hash_algorithm
        assert by_id["a"][PROVENANCE_BY_FIELD] == {"text": expected_transcript(algo, "audio:a:v1")}
        assert by_id["c"][PROVENANCE_BY_FIELD] == {"text": expected_transcript(algo, "audio:c:v2")}

    def test_staleness_predicates_are_or_ed(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        with store.open("w"):
            vf = self._with_quality(store)
            inc = store.resolve_update(
                vf.transcript, staleness_predicates=[nw.col("quality") < 0.15, nw.col("sample_id") == "b"]
            )
        assert id_set(inc.stale) == {"a", "b", "c"}
        assert len(inc.stale) == 3
        assert id_set(inc.new) == {"d"}

    def test_staleness_predicates_respect_global_filters_and_skip_comparison(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        low = nw.col("quality") < 0.5
        with store.open("w"):
            vf = self._with_quality(store)
            filtered = store.resolve_update(
                vf.transcript, staleness_predicates=[low], global_filters=[nw.col("sample_id") != "a"]
            )
            skipped = store.resolve_update(vf.transcript, staleness_predicates=[low], skip_comparison=True)
        assert id_set(filtered.stale) == {"c"}
        assert id_set(filtered.new) == {"d"}
        assert id_set(skipped.new) == {"a", "b", "c", "d"}
        assert len(skipped.stale) == 0

    # --- versions (§9.2) ---------------------------------------------------------------------------

    def test_code_version_bump_makes_samples_new_not_stale(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        store = store_factory()
        with store.open("w"):
            vf = _setup(store)
            _materialise(store, vf.transcript, vf.faces)
        with mx.FeatureGraph().use():
            bumped = define_video_features(transcript_code_version="2")
            assert bumped.transcript.feature_version() != vf.transcript.feature_version()
            assert bumped.faces.feature_version() == vf.faces.feature_version()
            with store:
                transcript = store.resolve_update(bumped.transcript)
                faces = store.resolve_update(bumped.faces)
        assert id_set(transcript.new) == {"a", "b", "c"}
        assert len(transcript.stale) == 0
        assert len(transcript.orphaned) == 0
        row = _by_id(transcript.new)["a"]
        assert row[PROVENANCE_BY_FIELD] == {"text": expected_transcript(store.hash_algorithm, "audio:a:v1", "2")}
        assert _empty(faces)

    def test_upstream_version_bump_reads_only_the_new_upstream_version(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        """Rows of an upstream's old feature version never feed a downstream resolve."""
        store = store_factory()
        with store.open("w"):
            _setup(store, ("a", "b", "c"))
        with mx.FeatureGraph().use():
            bumped = define_video_features(audio_code_version="2")
            with store.open("w"):
                store.write(bumped.video, _video_frame(["a"], audio_tag="v2"))  # only `a` under the new version
                inc = store.resolve_update(bumped.transcript)
                assert id_set(inc.new) == {"a"}
                (row,) = rows(inc.new)
                assert row[PROVENANCE_BY_FIELD]["text"] == expected_transcript(
                    store.hash_algorithm, "audio:a:v2", bumped.transcript.spec().fields[0].code_version
                )

    # --- hash algorithms (§3.6) --------------------------------------------------------------------

    @pytest.mark.parametrize("algorithm", ["md5", "sha256", "xxhash32", "xxhash64"])
    def test_row_provenance_vector(self, store_factory: StoreFactory, graph: mx.FeatureGraph, algorithm: str) -> None:
        algo = HashAlgorithm(algorithm)

        class Video(
            mx.BaseFeature, spec=mx.FeatureSpec(key="video", id_columns=["sample_id"], fields=["frames", "audio"])
        ):
            sample_id: str

        class Processed(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="processed",
                id_columns=["sample_id"],
                deps=[Video],
                fields=[mx.FieldSpec(key="default", code_version="1")],
            ),
        ):
            sample_id: str

        store = store_factory(hash_algorithm=algo)
        if algo not in store.supported_hash_algorithms:
            with pytest.raises(HashAlgorithmNotSupportedError), store.open("w"):
                pass
            return
        upstream = pl.DataFrame(
            {
                "sample_id": ["s1"],
                PROVENANCE_BY_FIELD: [{"frames": "video_frame_hash_1", "audio": "video_audio_hash_1"}],
            }
        )
        with store.open("w"):
            assert HashAlgorithm(store.hash_algorithm) is algo
            store.write(Video, upstream)
            (row,) = rows(store.resolve_update(Processed).new)
        text = "default|1|video.audio|video_audio_hash_1|video.frames|video_frame_hash_1"
        pinned = {"md5": "d50d88fd", "sha256": "b350736a", "xxhash64": "96465930"}
        expected_field = pinned.get(algorithm, hash_string(algo, text))
        assert hash_string(algo, text) == expected_field
        assert row[PROVENANCE_BY_FIELD] == {"default": expected_field}
        assert row[PROVENANCE] == hash_string(algo, expected_field)
        if algorithm == "xxhash64":
            assert row[PROVENANCE] == "81606296"

    def test_default_hash_algorithm_is_supported(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        store = store_factory()
        assert HashAlgorithm(store.hash_algorithm) in store.supported_hash_algorithms
        with store.open("w"):
            pass

    # --- map datatype (§3.7) -----------------------------------------------------------------------

    def test_map_datatype_gives_identical_results(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        def scenario(store: Any) -> dict[str, list[dict[str, Any]]]:
            vf = _setup(store)
            _materialise(store, vf.transcript)
            store.write(vf.video, _video_frame(["a"], audio_tag="v2"))
            store.write(vf.video, _video_frame(["d"]))
            inc = store.resolve_update(vf.transcript)
            keep = ["sample_id", PROVENANCE_BY_FIELD, PROVENANCE]
            return {"new": rows(inc.new, keep), "stale": rows(inc.stale, keep)}

        struct_store = store_factory()
        with struct_store.open("w"):
            expected = scenario(struct_store)
        with MetaxyConfig(enable_map_datatype=True).use():
            map_store = store_factory()
            if not map_store.supports_map_datatype:
                with pytest.raises(StoreCapabilityError), map_store.open("w"):
                    scenario(map_store)
                return
            with map_store.open("w"):
                assert scenario(map_store) == expected
