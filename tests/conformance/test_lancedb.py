"""The conformance suite and the trust catalogue against the LanceDB store, on a local directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from metaxy.ext.lancedb import LanceDBMetadataStore
from metaxy.testing import MetadataStoreConformance, StoreFactory, TrustConformance


def _factory(tmp_path: Path) -> StoreFactory:
    counter = iter(range(1_000_000))

    def make(**kwargs: Any) -> LanceDBMetadataStore:
        return LanceDBMetadataStore(tmp_path / f"store-{next(counter)}", **kwargs)

    return make


_EMPTY_TABLE_GAP = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known gap: the store creates an empty Lance table before the first append (concurrent "
    "create_table calls lost rows), so a failed first write leaves that empty table behind",
)


class _KnownGaps:
    @pytest.mark.parametrize("table", ["new", "existing"])
    def test_a_failing_lazy_frame_writes_nothing_and_keeps_its_error_type(
        self, store_factory: StoreFactory, graph: Any, table: str, request: pytest.FixtureRequest
    ) -> None:
        if table == "new":
            request.applymarker(_EMPTY_TABLE_GAP)
        super().test_a_failing_lazy_frame_writes_nothing_and_keeps_its_error_type(  # type: ignore[misc]
            store_factory, graph, table
        )


class TestLanceDB(_KnownGaps, MetadataStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return _factory(tmp_path)


class TestLanceDBTrust(_KnownGaps, TrustConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return _factory(tmp_path)
