"""Conformance: system tables -- pushing graph snapshots and reading them back (spec §5.8)."""

from __future__ import annotations

import pytest

import metaxy as mx
from metaxy.errors import FeatureNotFoundError, SystemDataNotFoundError
from metaxy.frames import collect_to_polars
from metaxy.metadata_store import SystemTableStorage
from metaxy.testing.conformance_support import (
    FEATURE_VERSION,
    PROJECT_VERSION,
    ConformanceBase,
    StoreFactory,
    define_video_features,
)

__all__ = ["SystemTablesConformance"]

FEATURE_VERSIONS = mx.FeatureKey(["metaxy-system", "feature_versions"])


class SystemTablesConformance(ConformanceBase):
    def test_push_records_the_snapshot_once(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"):
            storage = SystemTableStorage(store)
            first = storage.push_graph_snapshot()
            second = storage.push_graph_snapshot()
            snapshots = collect_to_polars(storage.read_graph_snapshots())
            features = collect_to_polars(storage.read_features(current=True))
        assert first.project_version == graph.project_version
        assert first.already_pushed is False
        assert second.project_version == graph.project_version
        assert second.already_pushed is True
        assert not second.updated_features
        assert snapshots.height == 1
        assert snapshots.row(0, named=True)[PROJECT_VERSION] == graph.project_version
        assert snapshots.row(0, named=True)["feature_count"] == 3
        versions = dict(zip(features.get_column("feature_key"), features.get_column(FEATURE_VERSION), strict=True))
        assert versions == {
            "video": vf.video.feature_version(),
            "transcript": vf.transcript.feature_version(),
            "faces": vf.faces.feature_version(),
        }

    def test_changed_graph_pushes_a_new_snapshot(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        define_video_features()
        store = store_factory()
        with store.open("w"):
            SystemTableStorage(store).push_graph_snapshot()
        with mx.FeatureGraph().use() as bumped:
            define_video_features(transcript_code_version="2")
            with store.open("w"):
                result = SystemTableStorage(store).push_graph_snapshot()
                snapshots = collect_to_polars(SystemTableStorage(store).read_graph_snapshots())
        assert result.already_pushed is False
        assert result.project_version == bumped.project_version != graph.project_version
        assert snapshots.get_column(PROJECT_VERSION).to_list() == [bumped.project_version, graph.project_version]

    def test_snapshot_loads_back_as_a_graph(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        vf = define_video_features()
        store = store_factory()
        with store.open("w"):
            storage = SystemTableStorage(store)
            storage.push_graph_snapshot()
            loaded = storage.load_graph_from_snapshot(graph.project_version)
            with pytest.raises(ValueError):
                storage.load_graph_from_snapshot("no-such-version")
        assert sorted(k.to_string() for k in loaded.feature_definitions_by_key) == ["faces", "transcript", "video"]
        assert loaded.get_feature_version("transcript") == vf.transcript.feature_version()
        assert loaded.get_feature_version("faces") == vf.faces.feature_version()

    def test_system_table_never_pushed_raises(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        define_video_features()
        store = store_factory()
        with store:
            with pytest.raises(SystemDataNotFoundError):
                store.read(FEATURE_VERSIONS)
            with pytest.raises(FeatureNotFoundError):  # a subclass of it
                store.read(FEATURE_VERSIONS)

    def test_system_tables_never_come_from_fallback_stores(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        define_video_features()
        fallback = store_factory()
        with fallback.open("w"):
            SystemTableStorage(fallback).push_graph_snapshot()
        primary = store_factory(fallback_stores=[fallback])
        with primary, pytest.raises(SystemDataNotFoundError):
            primary.read(FEATURE_VERSIONS)
