"""Conformance: opening and closing stores, access modes (spec §5.1)."""

from __future__ import annotations

import pytest

import metaxy as mx
from metaxy.errors import FeatureNotFoundError, StoreNotOpenError
from metaxy.testing.conformance_support import ConformanceBase, StoreFactory, id_set, samples

__all__ = ["LifecycleConformance"]


def _feature() -> type[mx.BaseFeature]:
    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="lifecycle/clip", id_columns=["sample_id"])):
        sample_id: str

    return Clip


class LifecycleConformance(ConformanceBase):
    def test_closed_store_refuses_every_operation(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _feature()
        store = store_factory()
        with pytest.raises(StoreNotOpenError, match="must be opened before use"):
            store.read(clip)
        with pytest.raises(StoreNotOpenError, match="must be opened before use"):
            store.write(clip, samples(["a"]))
        with pytest.raises(StoreNotOpenError, match="must be opened before use"):
            store.has_feature(clip)

    def test_with_store_opens_for_reading_only(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _feature()
        store = store_factory()
        with store:
            with pytest.raises(FeatureNotFoundError):
                store.read(clip)
            assert store.has_feature(clip) is False
            with pytest.raises(StoreNotOpenError, match="open in read mode"):
                store.write(clip, samples(["a"]))
            with pytest.raises(StoreNotOpenError, match="open in read mode"):
                store.drop_feature_metadata(clip)
            with pytest.raises(StoreNotOpenError, match="open in read mode"):
                store.delete(clip, None, soft=False)

    def test_write_mode_allows_writes_and_reads(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _feature()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a", "b"]))
            assert id_set(store.read(clip)) == {"a", "b"}
            assert store.has_feature(clip) is True

    def test_data_survives_closing_and_reopening(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _feature()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"]))
        with store:
            assert id_set(store.read(clip)) == {"a"}

    def test_inner_read_inside_write_forbids_writes_until_it_exits(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _feature()
        store = store_factory()
        with store.open("w"):
            with store.open("r"), pytest.raises(StoreNotOpenError, match="open in read mode"):
                store.write(clip, samples(["a"]))
            store.write(clip, samples(["b"]))
            assert id_set(store.read(clip)) == {"b"}

    def test_inner_write_inside_read_allows_writes(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _feature()
        store = store_factory()
        with store:
            with store.open("w"):
                store.write(clip, samples(["a"]))
            with pytest.raises(StoreNotOpenError, match="open in read mode"):
                store.write(clip, samples(["b"]))
            assert id_set(store.read(clip)) == {"a"}

    def test_reentrant_opens_close_with_the_outermost(
        self, store_factory: StoreFactory, graph: mx.FeatureGraph
    ) -> None:
        clip = _feature()
        store = store_factory()
        with store.open("w"):
            store.write(clip, samples(["a"]))
            with store:
                with store:
                    assert id_set(store.read(clip)) == {"a"}
                    assert store.mode == "w", "a nested `with store:` keeps the write mode"
                    store.write(clip, samples(["b"]))
                assert id_set(store.read(clip)) == {"a", "b"}
                assert store.is_open and store.mode == "w"
            assert id_set(store.read(clip)) == {"a", "b"}
        with pytest.raises(StoreNotOpenError, match="must be opened before use"):
            store.read(clip)

    def test_store_can_be_reopened_after_closing(self, store_factory: StoreFactory, graph: mx.FeatureGraph) -> None:
        clip = _feature()
        store = store_factory()
        for ids in (["a"], ["b"]):
            with store.open("w"):
                store.write(clip, samples(ids))
        with store:
            assert id_set(store.read(clip)) == {"a", "b"}
