"""Golden test: the ClickHouse store's native resolve (one statement, hashes computed by ClickHouse)
equals the Polars reference byte for byte, on the embedded engine (chdb), over the drawn graphs and
histories of ``metaxy.testing.golden`` -- both ``*_by_field`` representations (Map and Struct), and
each algorithm ClickHouse hashes natively: md5, sha256, xxhash32, xxhash64.

``GOLDEN_CH_EXAMPLES`` is the number of drawn scenarios per algorithm (each hypothesis example is a
batch of ``BATCH``). CI runs 20 per algorithm (a chdb query costs ~5-15 ms, so a scenario ~0.6 s);
``GOLDEN_CH_EXAMPLES=250`` draws the 1,000 of the ClickHouse issue (see docs/stores.md)."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, seed, settings

from metaxy.ext.clickhouse import ClickHouseMetadataStore
from metaxy.testing import golden
from metaxy.versioning.hashing import HashAlgorithm

EXAMPLES = int(os.environ.get("GOLDEN_CH_EXAMPLES", "20"))
BATCH = 10
_databases = itertools.count()


def _golden(algorithm: HashAlgorithm, salt: int) -> object:
    @pytest.mark.filterwarnings("ignore")
    @settings(
        max_examples=max(1, -(-EXAMPLES // BATCH)),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @seed(20261205 + salt)
    @given(batch=golden.batches(BATCH))
    def test(chdb_engine_path: str, batch: list[golden.Scenario]) -> None:
        names: list[str] = []

        def make() -> ClickHouseMetadataStore:
            names.append(f"g{next(_databases)}")
            url = f"chdb://{chdb_engine_path}?database={names[-1]}"
            return ClickHouseMetadataStore(url, auto_create_tables=True, hash_algorithm=algorithm)

        try:
            assert golden.check_against_reference(make, batch, hash_algorithm=algorithm.value) == BATCH
        finally:  # an engine holding thousands of idle tables slows every later query
            admin = ClickHouseMetadataStore(f"chdb://{chdb_engine_path}?database=default")
            with admin.open("w"):
                for name in names:
                    admin.transport.command(f"DROP DATABASE IF EXISTS {admin.dialect.identifier(name)} SYNC")

    test.__name__ = f"test_clickhouse_native_resolve_equals_the_polars_reference_{algorithm.value}"
    return test


test_clickhouse_native_resolve_equals_the_polars_reference_md5 = _golden(HashAlgorithm.MD5, 0)
test_clickhouse_native_resolve_equals_the_polars_reference_sha256 = _golden(HashAlgorithm.SHA256, 1)
test_clickhouse_native_resolve_equals_the_polars_reference_xxhash32 = _golden(HashAlgorithm.XXHASH32, 2)
test_clickhouse_native_resolve_equals_the_polars_reference_xxhash64 = _golden(HashAlgorithm.XXHASH64, 3)
