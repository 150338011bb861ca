"""The conformance suite against the Iceberg store on S3 (moto's server on 127.0.0.1), with a
SQLite catalog on the local disk."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory
from metaxy.testing.s3 import S3Server


class TestIcebergS3(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, s3_server: S3Server, tmp_path: Any) -> StoreFactory:
        counter = iter(range(1_000_000))

        def make(**kwargs: Any) -> IcebergMetadataStore:
            n = next(counter)
            (tmp_path / f"catalog-{n}").mkdir()
            props = s3_server.iceberg_catalog_properties(tmp_path / f"catalog-{n}")
            return IcebergMetadataStore(s3_server.url(), catalog_properties=props, **kwargs)

        return make
