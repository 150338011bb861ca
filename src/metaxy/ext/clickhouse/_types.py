"""Column types of the ClickHouse store: DDL for Polars types, the stored schema in the table's
comment, and Arrow results conformed back to the written Polars types.

Every column is ``Nullable`` (``Tuple`` and ``Map`` cannot be: a NULL struct reads back as a
struct of NULL fields). The table's Polars schema is kept in its ``COMMENT`` (written by the same
DDL statement), so reads return exactly the written types (Categorical, nanosecond timestamps,
Map and Struct columns).
"""

from __future__ import annotations

import base64
from typing import Any

import polars as pl
import pyarrow as pa

from metaxy.errors import MetadataSchemaError
from metaxy.sql.dialects import ClickHouseDialect

__all__ = ["conform", "ddl_type", "decode_schema", "encode_schema", "storable_frame"]

_PREFIX = "metaxy:"
_DIALECT = ClickHouseDialect()


def storable_dtype(dtype: pl.DataType) -> pl.DataType:
    """The Polars type written for ``dtype`` (categoricals and NULL columns as strings)."""
    if isinstance(dtype, pl.Categorical | pl.Enum | pl.Null):
        return pl.String()
    return dtype


def storable_frame(lf: pl.LazyFrame) -> pl.LazyFrame:
    schema = lf.collect_schema()
    casts = [pl.col(n).cast(storable_dtype(t)) for n, t in schema.items() if storable_dtype(t) != t]
    return lf.with_columns(casts) if casts else lf


def ddl_type(name: str, dtype: pl.DataType) -> str:
    """The ClickHouse column type of a Polars column.

    Raises:
        MetadataSchemaError: the type has no ClickHouse counterpart.
    """
    try:
        return _type(storable_dtype(dtype))
    except MetadataSchemaError:
        raise MetadataSchemaError(
            f"Column '{name}' of type {dtype} has no ClickHouse counterpart. Hint: cast it to a string, "
            "number, boolean, date, timestamp, struct, map or list type."
        ) from None


def _type(dtype: Any) -> str:
    if isinstance(dtype, type):
        dtype = dtype()
    if isinstance(dtype, pl.Datetime):
        precision = {"ms": 3, "us": 6, "ns": 9}[dtype.time_unit]
        tz = f", '{dtype.time_zone}'" if dtype.time_zone else ""
        return f"Nullable(DateTime64({precision}{tz}))"
    if isinstance(dtype, pl.Struct):
        if not dtype.fields:
            raise MetadataSchemaError("empty struct")
        return "Tuple(" + ", ".join(f"{_DIALECT.identifier(f.name)} {_type(f.dtype)}" for f in dtype.fields) + ")"
    if isinstance(dtype, pl.Map):
        return f"Map(String, {_type(dtype.value)})"
    if isinstance(dtype, pl.List | pl.Array):
        return f"Array({_type(dtype.inner)})"
    if isinstance(dtype, pl.Duration | pl.Time | pl.Decimal | pl.Object | pl.Int128 | pl.UInt128):
        raise MetadataSchemaError(str(dtype))
    arrow = pl.Series("x", [], dtype=dtype).to_arrow().type
    if pa.types.is_dictionary(arrow):
        arrow = arrow.value_type
    out = _DIALECT._type_name(arrow)
    return out


def encode_schema(schema: pl.Schema) -> str:
    arrow = pl.DataFrame(schema=schema).to_arrow().schema
    return _PREFIX + base64.b64encode(arrow.serialize().to_pybytes()).decode()


def decode_schema(text: str) -> pl.Schema | None:
    if not text.startswith(_PREFIX):
        return None
    arrow = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text[len(_PREFIX) :])))
    return pl.DataFrame(arrow.empty_table()).schema


def conform(table: pa.Table, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An engine result as a Polars frame of ``schema`` (the result's columns, in order)."""
    if table.num_columns == 0 and schema:
        return pl.DataFrame(schema=schema)
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    got = df.schema
    casts = [_cast(pl.col(n), got[n], t) for n, t in schema.items() if got[n] != t]
    return df.with_columns(casts) if casts else df


def _cast(ref: pl.Expr, got: pl.DataType, want: pl.DataType) -> pl.Expr:
    if isinstance(want, pl.Datetime) and isinstance(got, pl.Datetime):
        if got.time_zone and not want.time_zone:
            ref = ref.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        elif want.time_zone and not got.time_zone:
            ref = ref.dt.replace_time_zone("UTC")
        return ref.cast(want)
    if isinstance(want, pl.Null):
        return pl.lit(None, dtype=pl.Null).alias(ref.meta.output_name())
    return ref.cast(want)
