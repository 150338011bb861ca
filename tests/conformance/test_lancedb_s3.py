"""The conformance suite against the LanceDB store on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import pytest

from metaxy.ext.lancedb import LanceDBMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory
from metaxy.testing.s3 import S3Server


class TestLanceDBS3(MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, s3_server: S3Server) -> StoreFactory:
        def make(**kwargs: Any) -> LanceDBMetadataStore:
            return LanceDBMetadataStore(s3_server.url(), storage_options=s3_server.lance_storage_options, **kwargs)

        return make
