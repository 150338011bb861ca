"""The conformance suite against the Iceberg store on S3 (moto's server on 127.0.0.1), with a
SQLite catalog on the local disk."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory
from metaxy.testing.s3 import S3Server


def iceberg_s3_properties(server: S3Server, catalog_dir: Any) -> dict[str, str]:
    """PyIceberg catalog properties: a SQLite catalog in ``catalog_dir``, the warehouse on moto."""
    return {
        "uri": f"sqlite:///{catalog_dir}/catalog.db",
        "s3.endpoint": server.endpoint,
        "s3.access-key-id": server.access_key_id,
        "s3.secret-access-key": server.secret_access_key,
        "s3.region": server.region,
    }


class TestIcebergS3(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, s3_server: S3Server, tmp_path: Any) -> StoreFactory:
        counter = iter(range(1_000_000))

        def make(**kwargs: Any) -> IcebergMetadataStore:
            n = next(counter)
            (tmp_path / f"catalog-{n}").mkdir()
            props = iceberg_s3_properties(s3_server, tmp_path / f"catalog-{n}")
            return IcebergMetadataStore(s3_server.url(), catalog_properties=props, **kwargs)

        return make
