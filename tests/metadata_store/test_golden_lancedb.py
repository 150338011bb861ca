"""Golden test: the LanceDB store (Polars executor over lazy Lance scans) gives the in-memory Polars
reference's increments, over the drawn graphs and histories of ``metaxy.testing.golden``.

``GOLDEN_LANCEDB_EXAMPLES`` sets the scenario count: every write is a Lance commit (a new table
version), so each scenario costs a fraction of a second."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, seed, settings

from metaxy.ext.lancedb import LanceDBMetadataStore
from metaxy.testing import golden

EXAMPLES = int(os.environ.get("GOLDEN_LANCEDB_EXAMPLES", "12"))
BATCH = 4


@pytest.mark.filterwarnings("ignore")
@settings(
    max_examples=max(1, -(-EXAMPLES // BATCH)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@seed(20261207)
@given(batch=golden.batches(BATCH))
def test_lancedb_store_matches_the_polars_reference(
    batch: list[golden.Scenario], tmp_path_factory: pytest.TempPathFactory
) -> None:
    def make() -> LanceDBMetadataStore:
        return LanceDBMetadataStore(tmp_path_factory.mktemp("lance"), auto_create_tables=True)

    assert golden.check_against_reference(make, batch) == BATCH
