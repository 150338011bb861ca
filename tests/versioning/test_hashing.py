"""The hash algorithms metaxy offers are exactly the ones some store computes."""

from __future__ import annotations

import pytest

import metaxy as mx
from metaxy.errors import HashAlgorithmNotSupportedError
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
from metaxy.versioning.hashing import HashAlgorithm


def test_every_algorithm_is_computed_by_some_store() -> None:
    stores = (mx.InMemoryMetadataStore, DuckDBMetadataStore, DeltaMetadataStore)
    computed = frozenset().union(*(store.capabilities.hash_algorithms for store in stores))
    assert set(HashAlgorithm) == computed


@pytest.mark.parametrize("name", ["farmhash", "crc32"])
def test_an_algorithm_no_store_computes_is_a_typed_error(name: str) -> None:
    with pytest.raises(HashAlgorithmNotSupportedError, match=rf"'{name}' is not supported\. Supported: ") as info:
        mx.InMemoryMetadataStore(hash_algorithm=name)
    assert isinstance(info.value, ValueError)
    assert str(info.value).endswith("works on every store).")
