"""Struct or Map representation of the ``*_by_field`` columns (``enable_map_datatype``).

Executors always compute on Struct columns (one field per feature field). With
``enable_map_datatype`` stores keep and return ``Map(String, String)`` columns instead; these
helpers convert at the boundaries. Versions are identical either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from metaxy.models import constants as c

__all__ = ["BY_FIELD_COLUMNS", "MAP_DTYPE", "is_map", "map_mode", "to_map", "to_struct"]

MAP_DTYPE = pl.Map(pl.String, pl.String)
BY_FIELD_COLUMNS = (c.PROVENANCE_BY_FIELD, c.DATA_VERSION_BY_FIELD)


def map_mode() -> bool:
    """Whether the active configuration asks for Map-typed ``*_by_field`` columns."""
    from metaxy.models.settings import current_settings

    return current_settings().enable_map_datatype


def is_map(dtype: Any) -> bool:
    return isinstance(dtype, pl.Map)


def to_struct(column: str, keys: Sequence[str]) -> pl.Expr:
    """A Map column as a Struct with one String field per key (missing keys give NULL)."""
    struct = pl.struct([pl.col(column).map.get(k).cast(pl.String).alias(k) for k in keys])
    return pl.when(pl.col(column).is_null()).then(None).otherwise(struct).alias(column)


def to_map(column: str, keys: Sequence[str]) -> pl.Expr:
    """A Struct column as a ``Map(String, String)`` with the given keys, in key order; a NULL
    struct stays NULL."""
    entries = pl.concat_list(
        [pl.struct(key=pl.lit(k, pl.String), value=pl.col(column).struct.field(k).cast(pl.String)) for k in keys]
    ).cast(MAP_DTYPE)
    return pl.when(pl.col(column).is_null()).then(None).otherwise(entries).alias(column)


def structs_from_maps(lf: pl.LazyFrame, columns: Mapping[str, Sequence[str]]) -> pl.LazyFrame:
    """Convert the named Map columns of ``lf`` (those that are Maps) to Structs."""
    schema = lf.collect_schema()
    exprs = [to_struct(col, keys) for col, keys in columns.items() if col in schema and is_map(schema[col])]
    return lf.with_columns(exprs) if exprs else lf


def maps_from_structs(lf: pl.LazyFrame, columns: Mapping[str, Sequence[str]]) -> pl.LazyFrame:
    """Convert the named Struct columns of ``lf`` (those that are Structs) to Maps."""
    schema = lf.collect_schema()
    exprs = [to_map(col, keys) for col, keys in columns.items() if col in schema and isinstance(schema[col], pl.Struct)]
    return lf.with_columns(exprs) if exprs else lf
