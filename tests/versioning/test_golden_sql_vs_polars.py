"""Golden test: the SQL executor (DuckDB) and the Polars executor produce identical increments.

``metaxy.testing.golden`` draws graphs and histories (1-3 upstreams: optional deps, renames,
selects, filters, aggregation lineage, several fields, explicit field deps; upstream writes,
overrides, deletes and downstream writes), plays a batch of them into one store session, resolves
each downstream with ``versioning_engine="native"`` (one SQL statement) and ``"polars"``, and
asserts both equal the in-memory store's increments: columns, order, dtypes and values.

``GOLDEN_EXAMPLES`` is the number of drawn scenarios per store (1,000 by default); each
hypothesis example is a batch of ``BATCH`` scenarios.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings

from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.testing import golden

EXAMPLES = int(os.environ.get("GOLDEN_EXAMPLES", "1000"))
BATCH = 25
PARTS = 4  # split so pytest-xdist spreads the batches over workers
SETTINGS: dict[str, Any] = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}


def batches_for(scenarios: int) -> int:
    """Hypothesis examples needed for ``scenarios`` drawn scenarios, at least one."""
    return max(1, -(-scenarios // BATCH))


def _golden(part: int) -> Any:
    @pytest.mark.filterwarnings("ignore")
    @settings(max_examples=batches_for(EXAMPLES // PARTS), **SETTINGS)
    @seed(20261121 + part)
    @given(batch=golden.batches(BATCH))
    def test(batch: list[golden.Scenario]) -> None:
        golden.check_against_reference(lambda: DuckDBMetadataStore(":memory:", auto_create_tables=True), batch)

    test.__name__ = f"test_sql_and_polars_executors_agree_part_{part}"
    return test


# Each part has its own fixed seed, hence its own reproducible example stream.
test_sql_and_polars_executors_agree_part_0 = _golden(0)
test_sql_and_polars_executors_agree_part_1 = _golden(1)
test_sql_and_polars_executors_agree_part_2 = _golden(2)
test_sql_and_polars_executors_agree_part_3 = _golden(3)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=batches_for(EXAMPLES // 4), **SETTINGS)
@seed(20261122)
@given(batch=golden.batches(BATCH))
def test_delta_store_matches_the_in_memory_store(
    batch: list[golden.Scenario], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The Delta store (files on disk, Polars executor) gives the in-memory store's increments."""
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    golden.check_against_reference(lambda: DeltaMetadataStore(tmp_path_factory.mktemp("lake")), batch)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=batches_for(EXAMPLES // 20), **SETTINGS)
@seed(20261123)
@given(batch=golden.batches(BATCH))
def test_delta_store_on_s3_matches_the_in_memory_store(batch: list[golden.Scenario], s3_server: Any) -> None:
    """The Delta store on S3 (moto's server on 127.0.0.1) gives the in-memory store's increments."""
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    golden.check_against_reference(
        lambda: DeltaMetadataStore(s3_server.url(), storage_options=s3_server.storage_options), batch
    )


def test_a_store_that_differs_fails_the_check() -> None:
    """The harness catches a store whose increments differ from the reference."""
    from metaxy.metadata_store import InMemoryMetadataStore
    from metaxy.metadata_store.types import Increment

    class Skewed(InMemoryMetadataStore):
        """Drops the first new row of every increment it resolves."""

        def resolve_update(self, *args: Any, **kwargs: Any) -> Any:
            inc = super().resolve_update(*args, **kwargs)
            return Increment(new=inc.new.tail(len(inc.new) - 1), stale=inc.stale, orphaned=inc.orphaned)

    up = {"key": "up0", "fields": ["audio"], "optional": False, "rename": False, "select": None, "filter": None}
    scenario = {"ups": [{**up, "lineage": "identity"}], "down_fields": ["audio"], "events": [], "predicate": None}
    assert golden.check_against_reference(InMemoryMetadataStore, [{**scenario, "map": False}]) == 1
    with pytest.raises(AssertionError, match="s0 \\(new\\) differs from the reference"):
        golden.check_against_reference(Skewed, [{**scenario, "map": False}])
