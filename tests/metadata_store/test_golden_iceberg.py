"""Golden test: the Iceberg store (Polars executor over Iceberg scans) gives the in-memory Polars
reference's increments, over the hypothesis-drawn graphs and histories of
tests/versioning/test_golden_sql_vs_polars.py, on a local warehouse and on S3 (moto).

``GOLDEN_ICEBERG_EXAMPLES`` sets the local example count (the S3 test runs a third of it): every
write is an Iceberg commit, so each scenario costs about a second locally."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from polars.testing import assert_frame_equal

import metaxy as mx
from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
from metaxy.metadata_store import InMemoryMetadataStore

_spec = importlib.util.spec_from_file_location(
    "_golden_scenarios_iceberg", Path(__file__).parent.parent / "versioning" / "test_golden_sql_vs_polars.py"
)
assert _spec is not None and _spec.loader is not None
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

EXAMPLES = int(os.environ.get("GOLDEN_ICEBERG_EXAMPLES", "12"))


def _check(store: IcebergMetadataStore, sc: dict[str, Any]) -> None:
    warnings.simplefilter("ignore")
    with mx.FeatureGraph().use(), mx.MetaxyConfig(enable_map_datatype=sc["map"]).use():
        ups, down = golden.build_graph(sc)
        golden.play(store, sc, ups, down)
        got = golden.resolve(store, down, "polars", sc["predicate"])
        mem = InMemoryMetadataStore()
        golden.play(mem, sc, ups, down)
        reference = golden.resolve(mem, down, "polars", sc["predicate"])
    for kind in ("new", "stale", "orphaned"):
        assert_frame_equal(golden.without_timestamps(got[kind]), golden.without_timestamps(reference[kind]))


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@seed(20261205)
@given(sc=golden.scenarios())
def test_iceberg_store_matches_the_polars_reference(
    sc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _check(IcebergMetadataStore(tmp_path_factory.mktemp("iceberg")), sc)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=max(1, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@seed(20261206)
@given(sc=golden.scenarios())
def test_iceberg_store_on_s3_matches_the_polars_reference(
    sc: dict[str, Any], s3_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    catalog_dir = tmp_path_factory.mktemp("iceberg-catalog")
    props = {
        "uri": f"sqlite:///{catalog_dir}/catalog.db",
        "s3.endpoint": s3_server.endpoint,
        "s3.access-key-id": s3_server.access_key_id,
        "s3.secret-access-key": s3_server.secret_access_key,
        "s3.region": s3_server.region,
    }
    _check(IcebergMetadataStore(s3_server.url(), catalog_properties=props), sc)
