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
SECRET = "server-Pa55word"


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


class TestClickHouseServerTransport(MetadataStoreConformance):
    """The whole catalogue through the server transport: ``HttpTransport`` over clickhouse-connect's
    ``Client``, and the store in server mode (no caches, the catalog read at each resolve, the server
    check when connecting). Only the wire is swapped: clickhouse-connect's own chdb backend
    (``interface="chdb"``) carries the calls to the real engine in this process, as no ClickHouse
    server that runs metaxy's SQL (25.x or later) installs here. The HTTP wire itself is tested
    against Debian's server in tests/clickhouse (connection, credentials, a server too old)."""

    @pytest.fixture
    def store_factory(self, chdb_engine_path: str, created_databases: list[str], monkeypatch: Any) -> Any:
        import clickhouse_connect

        real = clickhouse_connect.get_client

        def in_process(**kwargs: Any) -> Any:
            assert kwargs["password"] == SECRET and kwargs["host"] == "engine.invalid"  # what a server gets
            return real(
                interface="chdb", path=chdb_engine_path, database=kwargs["database"], settings=kwargs["settings"]
            )

        monkeypatch.setattr(clickhouse_connect, "get_client", in_process)

        def make(**kwargs: Any) -> ClickHouseMetadataStore:
            kwargs.setdefault("auto_create_tables", True)
            created_databases.append(f"c{next(_databases)}")
            url = f"clickhouse+http://metaxy:{SECRET}@engine.invalid:8123/{created_databases[-1]}"
            store = ClickHouseMetadataStore(url, **kwargs)
            assert not store.embedded
            return store

        return make
