"""The conformance suite and the trust catalogue against the LanceDB store, on a local directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from metaxy.ext.lancedb import LanceDBMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory, TrustConformance


def _factory(tmp_path: Path) -> StoreFactory:
    counter = iter(range(1_000_000))

    def make(**kwargs: Any) -> LanceDBMetadataStore:
        return LanceDBMetadataStore(tmp_path / f"store-{next(counter)}", **kwargs)

    return make


class TestLanceDB(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return _factory(tmp_path)


class TestLanceDBTrust(TrustConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return _factory(tmp_path)
