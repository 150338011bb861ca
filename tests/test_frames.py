"""``metaxy.frames``: the one conversion of any frame to Polars, and its error at the store boundary."""

from __future__ import annotations

import duckdb
import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import MetadataSchemaError
from metaxy.frames import collect_to_arrow, collect_to_polars, to_polars_lazy

EXPECTED = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})


def _inputs(conn: duckdb.DuckDBPyConnection) -> dict[str, object]:
    return {
        "polars": EXPECTED,
        "polars lazy": EXPECTED.lazy(),
        "narwhals lazy over polars": nw.from_native(EXPECTED.lazy()),
        "narwhals eager over pandas": nw.from_native(EXPECTED.to_pandas(), eager_only=True),
        "pandas": EXPECTED.to_pandas(),
        "arrow": EXPECTED.to_arrow(),
        "duckdb": conn.sql("SELECT * FROM (VALUES (1, 'x'), (2, 'y')) t(a, b) ORDER BY a"),
    }


def test_every_frame_kind_converts_to_the_same_polars_frame() -> None:
    with duckdb.connect() as conn:
        for name, frame in _inputs(conn).items():
            lazy = to_polars_lazy(frame)
            assert isinstance(lazy, pl.LazyFrame), name
            assert lazy.collect().cast({"a": pl.Int64}).equals(EXPECTED), name
            assert collect_to_polars(frame).cast({"a": pl.Int64}).equals(EXPECTED), name
            assert collect_to_arrow(frame).num_rows == 2, name


def test_a_polars_lazy_plan_is_not_collected() -> None:
    plan = EXPECTED.lazy().filter(pl.col("a") > 1)
    assert to_polars_lazy(plan) is plan
    assert to_polars_lazy(nw.from_native(plan)) is plan


def test_a_non_frame_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"Cannot collect a list as a dataframe\. Hint: "):
        collect_to_polars([1, 2])


def test_a_store_refuses_a_non_frame_with_a_metadata_schema_error(graph: mx.FeatureGraph) -> None:
    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="frames/raw", id_columns=["a"], fields=["f"])):
        a: int

    store = mx.InMemoryMetadataStore()
    with store.open("w"), pytest.raises(MetadataSchemaError, match=r"Cannot use a dict as a metadata frame") as info:
        store.write(Raw, {"a": [1]})
    assert isinstance(info.value.__cause__, TypeError)
