"""The conformance suite against the in-memory store (the reference backend)."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.metadata_store.memory import InMemoryMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory


class TestInMemory(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Any) -> StoreFactory:
        def make(**kwargs: Any) -> InMemoryMetadataStore:
            return InMemoryMetadataStore(**kwargs)

        return make
