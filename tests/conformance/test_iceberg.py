"""The conformance suite against the Iceberg store on a local warehouse (SQLite catalog)."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory


class TestIceberg(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Any) -> StoreFactory:
        counter = iter(range(1_000_000))

        def make(**kwargs: Any) -> IcebergMetadataStore:
            return IcebergMetadataStore(tmp_path / f"store-{next(counter)}", **kwargs)

        return make
