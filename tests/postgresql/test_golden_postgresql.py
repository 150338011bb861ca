"""Golden test: PostgreSQL's native resolve (one statement, md5/sha256 computed by PostgreSQL) equals
the Polars reference byte for byte, over the hypothesis-drawn graphs and histories of
``metaxy.testing.golden`` (Struct representation: the store has no Map type).

``GOLDEN_PG_EXAMPLES`` is the number of drawn scenarios (each hypothesis example is a batch of
``BATCH``)."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, seed, settings

from metaxy.ext.postgresql import PostgreSQLMetadataStore
from metaxy.testing import golden

EXAMPLES = int(os.environ.get("GOLDEN_PG_EXAMPLES", "200"))
BATCH = 10
_schemas = itertools.count()


@pytest.mark.filterwarnings("ignore")
@settings(
    max_examples=max(1, -(-EXAMPLES // BATCH)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@seed(20261205)
@given(batch=golden.batches(BATCH))
def test_postgresql_native_resolve_equals_the_polars_reference(postgres_url: str, batch: list[golden.Scenario]) -> None:
    def make() -> PostgreSQLMetadataStore:
        return PostgreSQLMetadataStore(postgres_url, schema=f"g{next(_schemas)}", auto_create_tables=True)

    assert golden.check_against_reference(make, batch) == BATCH
