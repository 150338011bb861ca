"""The ClickHouse store against the shared conformance suite, on the embedded engine (chdb).

chdb runs one engine directory per process: every store here uses the session's engine directory
(``chdb_engine_path``) and a database of its own, dropped when the test ends (an engine holding
hundreds of idle MergeTree tables slows every later test)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from metaxy.ext.clickhouse import ClickHouseMetadataStore
from metaxy.ext.clickhouse import store as ch_store
from metaxy.testing import MetadataStoreConformance, TrustConformance
from metaxy.testing.conformance import LineageConformance, ResolveConformance

_databases = itertools.count()


def _factory(engine: str, names: list[str], *, shared: bool) -> Any:
    """Stores in a new database each (``shared``: all stores of the test in one database)."""

    def make(**kwargs: Any) -> ClickHouseMetadataStore:
        kwargs.setdefault("auto_create_tables", True)
        if not (shared and names):
            names.append(f"c{next(_databases)}")
        return ClickHouseMetadataStore(f"chdb://{engine}?database={names[-1]}", **kwargs)

    return make


@pytest.fixture
def created_databases(chdb_engine_path: str) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    admin = ClickHouseMetadataStore(f"chdb://{chdb_engine_path}?database=default")
    with admin.open("w"):
        for name in names:
            admin.transport.command(f"DROP DATABASE IF EXISTS {admin.dialect.identifier(name)} SYNC")


class TestClickHouse(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, chdb_engine_path: str, created_databases: list[str]) -> Any:
        return _factory(chdb_engine_path, created_databases, shared=False)


class TestClickHouseTrust(TrustConformance):
    """The trust catalogue: the store objects of one test share one database (as on a server)."""

    @pytest.fixture
    def store_factory(self, chdb_engine_path: str, created_databases: list[str]) -> Any:
        return _factory(chdb_engine_path, created_databases, shared=True)


class TestClickHouseFetchedBack(ResolveConformance, LineageConformance):
    """The resolve and lineage catalogues with orphaned rows fetched back by row number, the form
    of stored tables above ``CARRY_MAX_ROWS`` rows (the small tables above have them carried)."""

    @pytest.fixture
    def store_factory(self, chdb_engine_path: str, created_databases: list[str], monkeypatch: Any) -> Any:
        monkeypatch.setattr(ch_store, "CARRY_MAX_ROWS", -1)
        return _factory(chdb_engine_path, created_databases, shared=False)
