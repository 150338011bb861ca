"""The conformance suite against the Delta Lake store, in both table layouts."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory


class TestDeltaNested(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Any) -> StoreFactory:
        counter = iter(range(1_000_000))

        def make(**kwargs: Any) -> DeltaMetadataStore:
            return DeltaMetadataStore(tmp_path / f"store-{next(counter)}", **kwargs)

        return make


class TestDeltaFlat(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Any) -> StoreFactory:
        counter = iter(range(1_000_000))

        def make(**kwargs: Any) -> DeltaMetadataStore:
            return DeltaMetadataStore(tmp_path / f"store-{next(counter)}", layout="flat", **kwargs)

        return make
