"""Golden test: the Iceberg store (Polars executor over Iceberg scans) gives the in-memory Polars
reference's increments, over the drawn graphs and histories of ``metaxy.testing.golden``, on a local
warehouse and on S3 (moto).

``GOLDEN_ICEBERG_EXAMPLES`` sets the local scenario count (the S3 test runs a third of it): every
write is an Iceberg commit, so each scenario costs about a second locally."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, seed

from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
from metaxy.testing import golden

EXAMPLES = int(os.environ.get("GOLDEN_ICEBERG_EXAMPLES", "12"))
BATCH = 4


@pytest.mark.filterwarnings("ignore")
@golden.settings_for(EXAMPLES, BATCH)
@seed(20261205)
@given(batch=golden.batches(BATCH))
def test_iceberg_store_matches_the_polars_reference(
    batch: list[golden.Scenario], tmp_path_factory: pytest.TempPathFactory
) -> None:
    def make() -> IcebergMetadataStore:
        return IcebergMetadataStore(tmp_path_factory.mktemp("iceberg"))

    assert golden.check_against_reference(make, batch) == BATCH


@pytest.mark.filterwarnings("ignore")
@golden.settings_for(max(1, EXAMPLES // 3), BATCH)
@seed(20261206)
@given(batch=golden.batches(BATCH))
def test_iceberg_store_on_s3_matches_the_polars_reference(
    batch: list[golden.Scenario], s3_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    def make() -> IcebergMetadataStore:
        catalog_dir = tmp_path_factory.mktemp("iceberg-catalog")
        props = s3_server.iceberg_catalog_properties(catalog_dir)
        return IcebergMetadataStore(s3_server.url(), catalog_properties=props)

    assert golden.check_against_reference(make, batch) == BATCH
