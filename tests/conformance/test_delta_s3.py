"""The conformance suite against the Delta Lake store on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory, TrustConformance
from metaxy.testing.s3 import S3Server


class TestDeltaS3(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, s3_server: S3Server) -> StoreFactory:
        def make(**kwargs: Any) -> DeltaMetadataStore:
            return DeltaMetadataStore(s3_server.url(), storage_options=s3_server.storage_options, **kwargs)

        return make


class TestDeltaS3Trust(TrustConformance):
    """The trust catalogue on S3: no acknowledged write lost, a typed error for every mistake."""

    @pytest.fixture
    def store_factory(self, s3_server: S3Server) -> StoreFactory:
        def make(**kwargs: Any) -> DeltaMetadataStore:
            return DeltaMetadataStore(s3_server.url(), storage_options=s3_server.storage_options, **kwargs)

        return make
