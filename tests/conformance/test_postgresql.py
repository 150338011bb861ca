"""The PostgreSQL store against the shared conformance suite, on a real throw-away server."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.ext.postgresql import PostgreSQLMetadataStore
from metaxy.testing import MetadataStoreConformance, TrustConformance


class TestPostgreSQL(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, postgres_url: str) -> Any:
        counter = iter(range(10_000))

        def make(**kwargs: Any) -> PostgreSQLMetadataStore:
            kwargs.setdefault("auto_create_tables", True)
            return PostgreSQLMetadataStore(postgres_url, schema=f"s{next(counter)}", **kwargs)

        return make


class TestPostgreSQLTrust(TrustConformance):
    """The trust catalogue on PostgreSQL stores (one connection per thread)."""

    @pytest.fixture
    def store_factory(self, postgres_url: str) -> Any:
        def make(**kwargs: Any) -> PostgreSQLMetadataStore:
            kwargs.setdefault("auto_create_tables", True)
            return PostgreSQLMetadataStore(postgres_url, **kwargs)

        return make
