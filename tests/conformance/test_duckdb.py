"""The DuckDB store against the shared conformance suite, on a real database file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.testing import MetadataStoreConformance, TrustConformance


class TestDuckDB(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Any:
        counter = iter(range(10_000))

        def make(**kwargs: Any) -> DuckDBMetadataStore:
            kwargs.setdefault("auto_create_tables", True)
            return DuckDBMetadataStore(tmp_path / f"store_{next(counter)}.duckdb", **kwargs)

        return make


class TestDuckDBInMemoryTrust(TrustConformance):
    """The trust catalogue on ``:memory:`` DuckDB stores (one connection per store object, a cursor
    per thread)."""

    @pytest.fixture
    def store_factory(self) -> Any:
        def make(**kwargs: Any) -> DuckDBMetadataStore:
            kwargs.setdefault("auto_create_tables", True)
            return DuckDBMetadataStore(":memory:", **kwargs)

        return make
