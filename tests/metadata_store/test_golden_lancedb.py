"""Golden test: the LanceDB store (Polars executor over lazy Lance scans) gives the in-memory Polars
reference's increments, over the drawn graphs and histories of ``metaxy.testing.golden``, on a local
path and on S3 (moto).

``GOLDEN_LANCEDB_EXAMPLES`` sets the local scenario count (the S3 test runs a third of it): every
write is a Lance commit (a new table version), so each scenario costs a fraction of a second locally."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, seed

from metaxy.ext.lancedb import LanceDBMetadataStore
from metaxy.testing import golden
from metaxy.testing.s3 import S3Server

EXAMPLES = int(os.environ.get("GOLDEN_LANCEDB_EXAMPLES", "12"))
BATCH = 4


@pytest.mark.filterwarnings("ignore")
@golden.settings_for(EXAMPLES, BATCH)
@seed(20261207)
@given(batch=golden.batches(BATCH))
def test_lancedb_store_matches_the_polars_reference(
    batch: list[golden.Scenario], tmp_path_factory: pytest.TempPathFactory
) -> None:
    def make() -> LanceDBMetadataStore:
        return LanceDBMetadataStore(tmp_path_factory.mktemp("lance"), auto_create_tables=True)

    assert golden.check_against_reference(make, batch) == BATCH


@pytest.mark.filterwarnings("ignore")
@golden.settings_for(max(1, EXAMPLES // 3), BATCH)
@seed(20261208)
@given(batch=golden.batches(BATCH))
def test_lancedb_store_on_s3_matches_the_polars_reference(batch: list[golden.Scenario], s3_server: S3Server) -> None:
    def make() -> LanceDBMetadataStore:
        return LanceDBMetadataStore(
            s3_server.url(), storage_options=s3_server.lance_storage_options, auto_create_tables=True
        )

    assert golden.check_against_reference(make, batch) == BATCH
