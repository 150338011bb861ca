"""The ``resolve_update`` benchmark workload: feature graphs and byte-identical input data.

The data formula and salts mirror ``lower_bound_duckdb.py`` (the raw-DuckDB lower bound,
``benchmarks/lower_bound_duckdb.py``) exactly, so metaxy and the bound see the same bytes:

* root ``r``, field ``j`` (name ``f``) of sample ``i`` has provenance
  ``f[0] + str(mix(i, field_salt(r, j)) % (2**20 + 1))``;
* ``mix(i, salt) = (i * 2654435761 + salt * 40503 + 12345) % 4294967291``;
* the stale phase appends a full copy of root 0 whose ``audio`` gets ``"_bumped"`` appended
  on rows where ``mix(i, 777) % 10 == 0`` (note: ``mix`` *without* the ``2**20 + 1`` modulus).

``tests/benchmarks/test_workload_data.py`` checks the generated frames against the bound's
own seeding SQL.  metaxy is imported lazily (only :func:`define_features` needs it), so the
data half of this module works without the library.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

ID_COLUMN = "sample_uid"
PROVENANCE_BY_FIELD = "metaxy_provenance_by_field"
CODE_VERSION = "1"

MIX_A, MIX_B, MIX_C, MIX_P = 2654435761, 40503, 12345, 4294967291
VALUE_MOD = 2**20 + 1
MUTATION_SALT, MUTATION_MOD = 777, 10
BUMP_SUFFIX = "_bumped"
BUMPED_FIELD = "audio"
# Largest N for which ``i * MIX_A`` stays inside BIGINT, the type the bound computes in.
MAX_N = (2**63 - 1) // MIX_A

#: Stale counts documented in the shared README (cross-checked by the test suite).
KNOWN_STALE_COUNTS: dict[int, int] = {10_000: 1_001, 100_000: 10_005, 1_000_000: 100_004}

PHASES = ("new", "stale")


@dataclass(frozen=True)
class Scenario:
    """A feature graph of the benchmark: N root features fanning into one leaf."""

    name: str
    root_keys: tuple[str, ...]
    root_fields: tuple[str, ...]
    leaf_key: str
    leaf_fields: tuple[str, ...]


SCENARIOS: dict[str, Scenario] = {
    "simple": Scenario(
        name="simple",
        root_keys=("bench/simple_root",),
        root_fields=("audio", "frames"),
        leaf_key="bench/simple_leaf",
        leaf_fields=("prediction",),
    ),
    "wide": Scenario(
        name="wide",
        root_keys=("bench/wide_root_0", "bench/wide_root_1"),
        root_fields=("audio", "frames", "optical_flow", "embedding"),
        leaf_key="bench/wide_leaf",
        leaf_fields=("prediction_a", "prediction_b"),
    ),
}


# --------------------------------------------------------------------------- data


def field_salt(root_index: int, field_index: int) -> int:
    return (42 + root_index) * 16 + field_index


def _u64(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.UInt64)


def mix(ids: pl.Expr, salt: int) -> pl.Expr:
    """``(i * MIX_A + salt * MIX_B + MIX_C) % MIX_P`` on UInt64 (no overflow for ``i <= MAX_N``)."""
    return (ids * _u64(MIX_A) + _u64(salt * MIX_B + MIX_C)) % _u64(MIX_P)


def bump_mask(ids: pl.Expr) -> pl.Expr:
    """Rows whose ``audio`` the stale phase changes (~10%)."""
    return mix(ids, MUTATION_SALT) % _u64(MUTATION_MOD) == _u64(0)


def field_value(field: str, salt: int) -> pl.Expr:
    ids = pl.col(ID_COLUMN)
    return pl.concat_str([pl.lit(field[0]), (mix(ids, salt) % _u64(VALUE_MOD)).cast(pl.String)]).alias(field)


def _check_n(n: int) -> None:
    if not 0 <= n <= MAX_N:
        raise ValueError(f"n must be in [0, {MAX_N}], got {n}")


def sample_ids(n: int) -> pl.DataFrame:
    _check_n(n)
    return pl.DataFrame(pl.int_range(0, n, dtype=pl.UInt64, eager=True).alias(ID_COLUMN))


def root_columns(scenario: Scenario, root_index: int, n: int, *, bumped: bool = False) -> pl.DataFrame:
    """Flat frame ``sample_uid`` + one String column per field, exactly the bound's root table."""
    frame = sample_ids(n).with_columns(
        field_value(field, field_salt(root_index, j)) for j, field in enumerate(scenario.root_fields)
    )
    if bumped:
        audio = pl.col(BUMPED_FIELD)
        frame = frame.with_columns(
            pl.when(bump_mask(pl.col(ID_COLUMN))).then(audio + BUMP_SUFFIX).otherwise(audio).alias(BUMPED_FIELD)
        )
    return frame


def to_metaxy_frame(flat: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    """Pack the per-field columns into metaxy's ``metaxy_provenance_by_field`` struct."""
    return flat.select(pl.col(ID_COLUMN), pl.struct(*fields).alias(PROVENANCE_BY_FIELD))


def root_frame(scenario: Scenario, root_index: int, n: int, *, bumped: bool = False) -> pl.DataFrame:
    """Root ``root_index`` as metaxy writes it: ``sample_uid`` UInt64 + provenance struct."""
    return to_metaxy_frame(root_columns(scenario, root_index, n, bumped=bumped), scenario.root_fields)


def expected_stale(n: int) -> int:
    """Number of leaf rows the stale phase must report (rows whose root-0 ``audio`` was bumped)."""
    return int(sample_ids(n).select(bump_mask(pl.col(ID_COLUMN)).sum()).item())


def expected_counts(n: int, phase: str) -> tuple[int, int]:
    """(new, stale) row counts ``resolve_update(leaf)`` must return in ``phase``."""
    if phase == "new":
        return n, 0
    if phase == "stale":
        return 0, expected_stale(n)
    raise ValueError(f"unknown phase {phase!r}")


# ------------------------------------------------------------------- feature graph


@dataclass(frozen=True)
class BenchFeatures:
    """The metaxy feature classes of one scenario, registered in their own graph."""

    graph: Any
    roots: tuple[type, ...]
    leaf: type


def _class_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("/")[-1].split("_"))


def _feature_class(mx: Any, key: str, fields: Sequence[str], deps: Sequence[type] = ()) -> type:
    spec_kwargs: dict[str, Any] = {
        "key": key,
        "id_columns": [ID_COLUMN],
        "fields": [mx.FieldSpec(key=f, code_version=CODE_VERSION) for f in fields],
    }
    if deps:
        spec_kwargs["deps"] = [mx.FeatureDep(feature=d) for d in deps]

    def body(ns: dict[str, Any]) -> None:
        ns["__module__"] = __name__
        ns["__annotations__"] = {ID_COLUMN: int}

    return types.new_class(_class_name(key), (mx.BaseFeature,), {"spec": mx.FeatureSpec(**spec_kwargs)}, body)


def define_features(scenario: Scenario) -> BenchFeatures:
    """Define the scenario's features in a fresh ``mx.FeatureGraph`` (imports metaxy)."""
    import metaxy as mx

    graph = mx.FeatureGraph()
    with graph.use():
        roots = tuple(_feature_class(mx, key, scenario.root_fields) for key in scenario.root_keys)
        leaf = _feature_class(mx, scenario.leaf_key, scenario.leaf_fields, deps=roots)
    return BenchFeatures(graph=graph, roots=roots, leaf=leaf)


def iter_root_frames(scenario: Scenario, n: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """Root frames one at a time, so seeding never holds more than one in memory."""
    for root_index in range(len(scenario.root_keys)):
        yield root_index, root_frame(scenario, root_index, n)
