"""Golden test: PostgreSQL's native resolve (one statement, md5/sha256 computed by PostgreSQL) equals
the Polars reference byte for byte, over the hypothesis-drawn graphs and histories of
``metaxy.testing.golden`` (Struct representation: the store has no Map type).

``GOLDEN_PG_EXAMPLES`` is the number of drawn scenarios (1,000 by default), split over ``PARTS`` tests
(each with its own seed) so pytest-xdist spreads them; each hypothesis example is a batch of
``BATCH`` scenarios."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, seed

from metaxy.ext.postgresql import PostgreSQLMetadataStore
from metaxy.testing import golden

EXAMPLES = int(os.environ.get("GOLDEN_PG_EXAMPLES", "1000"))
BATCH = 25
PARTS = 4
_schemas = itertools.count()


def _golden(part: int) -> object:
    @pytest.mark.filterwarnings("ignore")
    @golden.settings_for(max(1, EXAMPLES // PARTS), BATCH)
    @seed(20261205 + part)
    @given(batch=golden.batches(BATCH))
    def test(postgres_url: str, batch: list[golden.Scenario]) -> None:
        def make() -> PostgreSQLMetadataStore:
            return PostgreSQLMetadataStore(postgres_url, schema=f"g{next(_schemas)}", auto_create_tables=True)

        assert golden.check_against_reference(make, batch) == BATCH

    test.__name__ = f"test_postgresql_native_resolve_equals_the_polars_reference_part_{part}"
    return test


# Each part has its own fixed seed, hence its own reproducible example stream.
test_postgresql_native_resolve_equals_the_polars_reference_part_0 = _golden(0)
test_postgresql_native_resolve_equals_the_polars_reference_part_1 = _golden(1)
test_postgresql_native_resolve_equals_the_polars_reference_part_2 = _golden(2)
test_postgresql_native_resolve_equals_the_polars_reference_part_3 = _golden(3)
