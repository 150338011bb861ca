"""Golden test: PostgreSQL's native resolve (one statement, md5/sha256 computed by PostgreSQL) equals
the Polars reference byte for byte, over the hypothesis-drawn graphs and histories of
tests/versioning/test_golden_sql_vs_polars.py (Struct representation: the store has no Map type)."""

from __future__ import annotations

import importlib.util
import itertools
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, seed, settings
from polars.testing import assert_frame_equal

import metaxy as mx
from metaxy.ext.postgresql import PostgreSQLMetadataStore
from metaxy.metadata_store import InMemoryMetadataStore

_spec = importlib.util.spec_from_file_location(
    "_golden_scenarios", Path(__file__).parent.parent / "versioning" / "test_golden_sql_vs_polars.py"
)
assert _spec is not None and _spec.loader is not None
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

EXAMPLES = int(os.environ.get("GOLDEN_PG_EXAMPLES", "200"))
_schemas = itertools.count()


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@seed(20261205)
@given(sc=golden.scenarios())
def test_postgresql_native_resolve_equals_the_polars_reference(postgres_url: str, sc: dict[str, Any]) -> None:
    assume(not sc["map"])
    warnings.simplefilter("ignore")
    with mx.FeatureGraph().use(), mx.MetaxyConfig(enable_map_datatype=False).use():
        ups, down = golden.build_graph(sc)
        pg = PostgreSQLMetadataStore(postgres_url, schema=f"g{next(_schemas)}", auto_create_tables=True)
        golden.play(pg, sc, ups, down)
        native = golden.resolve(pg, down, "native", sc["predicate"])
        polars = golden.resolve(pg, down, "polars", sc["predicate"])
        mem = InMemoryMetadataStore()
        golden.play(mem, sc, ups, down)
        reference = golden.resolve(mem, down, "polars", sc["predicate"])
    for kind in ("new", "stale", "orphaned"):
        assert_frame_equal(native[kind], polars[kind], check_row_order=True)
        assert_frame_equal(golden.without_timestamps(native[kind]), golden.without_timestamps(reference[kind]))
