"""The benchmark's Polars-generated inputs are byte-identical to the lower bound's DuckDB seeding.

Runs the bound's own ``seed()`` (``lower_bound_duckdb.py``, append layout, stale phase) on a
small N and compares every root table row with ``benchmarks/workload.py``'s frames.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
N = 1000


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


wl = _load("metaxy_bench_workload", BENCHMARKS / "workload.py")
bound_worker = _load("metaxy_bench_bound_worker", BENCHMARKS / "bound_worker.py")


@pytest.fixture(scope="module")
def bound() -> ModuleType:
    script = bound_worker.bound_script()
    assert script.is_file(), f"the lower bound ships in benchmarks/: {script}"
    return _load("metaxy_bench_lower_bound", script)


def _query(db: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())  # type: ignore[return-value]
    finally:
        con.close()


@pytest.fixture(scope="module", params=sorted(wl.SCENARIOS))
def seeded(
    request: pytest.FixtureRequest, bound: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path]:
    scenario = wl.SCENARIOS[request.param]
    db = tmp_path_factory.mktemp(f"bound_{scenario.name}") / "seed.duckdb"
    bound.seed(db, scenario.name, N, "stale", "md5", "append")
    return scenario, db


def _bound_root(db: Path, root_index: int, version: int, fields: tuple[str, ...]) -> pl.DataFrame:
    cols = ", ".join(("sample_uid", *fields))
    return _query(db, f"SELECT {cols} FROM root{root_index} WHERE version = {version} ORDER BY sample_uid")


def test_scenarios_match_bound(bound: ModuleType) -> None:
    for scenario in wl.SCENARIOS.values():
        tables, fields, keys, leaf_fields = bound.scenario_def(scenario.name)
        assert tuple(keys) == scenario.root_keys
        assert all(tuple(f) == scenario.root_fields for f in fields)
        assert tuple(leaf_fields) == scenario.leaf_fields
        assert len(tables) == len(scenario.root_keys)


def test_root_frames_byte_identical(seeded: tuple[Any, Path]) -> None:
    scenario, db = seeded
    for root_index in range(len(scenario.root_keys)):
        expected = _bound_root(db, root_index, 1, scenario.root_fields)
        assert_frame_equal(wl.root_columns(scenario, root_index, N), expected)


def test_bumped_root_byte_identical(seeded: tuple[Any, Path]) -> None:
    scenario, db = seeded
    expected = _bound_root(db, 0, 2, scenario.root_fields)
    ours = wl.root_columns(scenario, 0, N, bumped=True)
    assert_frame_equal(ours, expected)
    assert ours["audio"].str.ends_with("_bumped").sum() == wl.expected_stale(N) > 0


def test_metaxy_frame_layout() -> None:
    scenario = wl.SCENARIOS["wide"]
    frame = wl.root_frame(scenario, 1, 10)
    assert frame.schema == pl.Schema(
        {
            "sample_uid": pl.UInt64(),
            "metaxy_provenance_by_field": pl.Struct({f: pl.String for f in scenario.root_fields}),
        }
    )
    assert_frame_equal(frame.unnest("metaxy_provenance_by_field"), wl.root_columns(scenario, 1, 10))


@pytest.mark.parametrize(("n", "stale"), sorted(wl.KNOWN_STALE_COUNTS.items()))
def test_expected_stale_counts(bound: ModuleType, n: int, stale: int) -> None:
    assert wl.expected_stale(n) == stale
    con = duckdb.connect()
    try:
        mask = f"{bound.mix_sql('i', bound.MUTATION_SALT)} % {bound.MUTATION_MOD} = 0"
        assert con.sql(f"SELECT count(*) FROM range({n}) AS g(i) WHERE {mask}").fetchall() == [(stale,)]
    finally:
        con.close()


def test_expected_counts() -> None:
    assert wl.expected_counts(10_000, "new") == (10_000, 0)
    assert wl.expected_counts(10_000, "stale") == (0, 1_001)
    with pytest.raises(ValueError):
        wl.root_columns(wl.SCENARIOS["simple"], 0, wl.MAX_N + 1)
