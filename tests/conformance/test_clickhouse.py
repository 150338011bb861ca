"""The ClickHouse store against the shared conformance suite, on the embedded engine (chdb).

chdb runs one engine directory per process: every store here uses the session's engine directory
(``chdb_engine_path``) and a database of its own."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from metaxy.ext.clickhouse import ClickHouseMetadataStore
from metaxy.testing import MetadataStoreConformance, TrustConformance

_databases = itertools.count()


def _factory(chdb_engine_path: str) -> Any:
    def make(**kwargs: Any) -> ClickHouseMetadataStore:
        kwargs.setdefault("auto_create_tables", True)
        return ClickHouseMetadataStore(f"chdb://{chdb_engine_path}?database=c{next(_databases)}", **kwargs)

    return make


class TestClickHouse(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, chdb_engine_path: str) -> Any:
        return _factory(chdb_engine_path)


class TestClickHouseTrust(TrustConformance):
    @pytest.fixture
    def store_factory(self, chdb_engine_path: str) -> Any:
        return _factory(chdb_engine_path)
