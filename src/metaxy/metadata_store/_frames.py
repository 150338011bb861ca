"""Frame handling shared by every store: coercing user frames to Polars, applying filters, and
normalising the system columns of a write (spec §4, §5.3)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import narwhals as nw
import polars as pl

from metaxy.errors import MetadataSchemaError, MetaxyWarning
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.versioning.hashing import HashAlgorithm
from metaxy.versioning.polars_executor import sample_hash_expr
from metaxy.versioning.representation import BY_FIELD_COLUMNS, maps_from_structs, structs_from_maps

__all__ = [
    "TIMESTAMP",
    "WriteContext",
    "apply_filters",
    "coerce_filters",
    "normalize_write",
    "to_polars_lazy",
]

TIMESTAMP = pl.Datetime("us", "UTC")
FilterLike = str | FilterExpression | nw.Expr | pl.Expr

SYSTEM_ORDER: tuple[str, ...] = (
    c.PROVENANCE_BY_FIELD,
    c.PROVENANCE,
    c.DATA_VERSION_BY_FIELD,
    c.DATA_VERSION,
    c.FEATURE_VERSION,
    c.PROJECT_VERSION,
    c.CREATED_AT,
    c.UPDATED_AT,
    c.DELETED_AT,
    c.MATERIALIZATION_ID,
)


def to_polars_lazy(df: Any) -> pl.LazyFrame:
    """Any narwhals-compatible frame (Polars, pandas, PyArrow, narwhals, DuckDB ...) as a Polars LazyFrame."""
    if isinstance(df, pl.LazyFrame):
        return df
    if isinstance(df, pl.DataFrame):
        return df.lazy()
    try:
        frame = nw.from_native(df)
    except TypeError as exc:
        raise MetadataSchemaError(
            f"Cannot use a {type(df).__name__} as a metadata frame. "
            "Hint: pass a Polars, pandas or PyArrow frame (or a narwhals / lazy frame)."
        ) from exc
    native = frame.to_native()
    if isinstance(native, pl.LazyFrame | pl.DataFrame):
        return native.lazy()
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    return frame.to_polars().lazy()


def coerce_filters(filters: FilterLike | Sequence[FilterLike] | None) -> list[FilterLike]:
    """A filter, a list of them, or None, as a list; SQL strings are parsed (FilterParseError)."""
    if filters is None:
        return []
    if isinstance(filters, str | FilterExpression | nw.Expr | pl.Expr):
        filters = [filters]
    return [FilterExpression.parse(f) if isinstance(f, str) else f for f in filters]


def apply_filters(lf: pl.LazyFrame, filters: Sequence[FilterLike]) -> pl.LazyFrame:
    """Apply parsed filters (SQL-string expressions, Polars or narwhals expressions) to a Polars frame."""
    for f in filters:
        if isinstance(f, str):
            f = FilterExpression.parse(f)
        if isinstance(f, FilterExpression):
            lf = lf.filter(f.to_polars())
        elif isinstance(f, pl.Expr):
            lf = lf.filter(f)
        else:
            lf = nw.from_native(lf).filter(f).to_native()
    return lf


@dataclass(frozen=True)
class WriteContext:
    """What a write stamps onto rows."""

    feature: str
    id_columns: tuple[str, ...]
    field_struct_keys: tuple[str, ...]
    is_root: bool
    feature_version: str
    project_version: str
    materialization_id: str | None
    now: datetime
    algorithm: HashAlgorithm
    length: int
    preserve_feature_version: bool = False
    keep_timestamps: bool = False  # soft-delete markers and copies keep created/updated/deleted_at
    map_mode: bool = False  # store the *_by_field columns as Map(String, String)


def normalize_write(lf: pl.LazyFrame, ctx: WriteContext) -> pl.LazyFrame:
    """Validate a frame for writing and add / normalise every system column (spec §5.3).

    Raises:
        MetadataSchemaError: an id column or ``metaxy_provenance_by_field`` is missing, or the
            provenance column is not a struct of strings with the feature's fields.
    """
    by_field = {col: ctx.field_struct_keys for col in BY_FIELD_COLUMNS}
    lf = structs_from_maps(lf, by_field)
    schema = lf.collect_schema()
    _check_columns(schema, ctx)
    names = set(schema.names())
    null_typed = [n for n, dt in schema.items() if n in c.SYSTEM_COLUMNS and dt == pl.Null]
    if null_typed:
        lf = lf.with_columns([pl.col(n).cast(_system_dtype(n, schema)) for n in null_typed])
        names -= set(null_typed) & {c.PROVENANCE, c.DATA_VERSION, c.DATA_VERSION_BY_FIELD}
        lf = lf.drop([n for n in null_typed if n not in names])
    keys = tuple(_struct_keys(lf.collect_schema()[c.PROVENANCE_BY_FIELD]))
    lf = _fill_provenance(lf, names, keys, ctx)
    lf = _fill_data_versions(lf, names, keys, ctx)
    lf = _stamp(lf, names, ctx)
    user = [n for n in lf.collect_schema().names() if n not in c.SYSTEM_COLUMNS]
    lf = lf.select(*user, *SYSTEM_ORDER)
    return maps_from_structs(lf, {col: keys for col in BY_FIELD_COLUMNS}) if ctx.map_mode else lf


def _check_columns(schema: pl.Schema, ctx: WriteContext) -> None:
    names = schema.names()
    hint = f"Available columns: {', '.join(names) or '(none)'}."
    missing_ids = [i for i in ctx.id_columns if i not in names]
    if missing_ids:
        raise MetadataSchemaError(
            f"Feature '{ctx.feature}' has no id column(s) {missing_ids} in the written frame. {hint} "
            "Hint: every row must carry the feature's id columns."
        )
    if c.PROVENANCE_BY_FIELD not in names:
        raise MetadataSchemaError(
            f"Feature '{ctx.feature}': the written frame has no '{c.PROVENANCE_BY_FIELD}' column. {hint} "
            "Hint: write the `new`/`stale` frames of resolve_update (or, for a root feature, give each row a "
            "struct of per-field provenance strings)."
        )
    dtype = schema[c.PROVENANCE_BY_FIELD]
    if not isinstance(dtype, pl.Struct):
        raise MetadataSchemaError(
            f"Feature '{ctx.feature}': '{c.PROVENANCE_BY_FIELD}' must be a Struct of strings, got {dtype}. "
            f"Hint: build it with pl.struct({', '.join(ctx.field_struct_keys)})."
        )
    _check_struct(ctx, c.PROVENANCE_BY_FIELD, dtype, exact=not ctx.preserve_feature_version)
    if c.DATA_VERSION_BY_FIELD in names and schema[c.DATA_VERSION_BY_FIELD] != pl.Null:
        dv = schema[c.DATA_VERSION_BY_FIELD]
        if not isinstance(dv, pl.Struct):
            raise MetadataSchemaError(
                f"Feature '{ctx.feature}': '{c.DATA_VERSION_BY_FIELD}' must be a Struct of strings, got {dv}. "
                "Hint: use the same field names as the provenance struct."
            )
        _check_struct(ctx, c.DATA_VERSION_BY_FIELD, dv, exact=False)
    for col in (c.PROVENANCE, c.DATA_VERSION, c.FEATURE_VERSION, c.PROJECT_VERSION, c.MATERIALIZATION_ID):
        if col in names and schema[col] not in (pl.String, pl.Null):
            raise MetadataSchemaError(
                f"Feature '{ctx.feature}': '{col}' must be a string column, got {schema[col]}. "
                "Hint: drop it and let metaxy compute it."
            )


def _check_struct(ctx: WriteContext, col: str, dtype: pl.Struct, *, exact: bool) -> None:
    fields = {f.name: f.dtype for f in dtype.fields}
    bad = {k: str(v) for k, v in fields.items() if v not in (pl.String, pl.Null)}
    if bad:
        raise MetadataSchemaError(
            f"Feature '{ctx.feature}': '{col}' fields must be strings, got {bad}. Hint: cast the values to str."
        )
    missing = [k for k in ctx.field_struct_keys if k not in fields]
    extra = [k for k in fields if k not in ctx.field_struct_keys]
    if (exact and (missing or extra)) or (col == c.PROVENANCE_BY_FIELD and missing):
        raise MetadataSchemaError(
            f"Feature '{ctx.feature}': '{col}' has fields {sorted(fields)} but the feature's fields are "
            f"{list(ctx.field_struct_keys)} (missing {missing}, unexpected {extra}). "
            "Hint: the struct needs one entry per field (field key parts joined by '_')."
        )


def _struct_keys(dtype: Any) -> list[str]:
    return [f.name for f in dtype.fields]


def _system_dtype(name: str, schema: pl.Schema) -> Any:
    if name in (c.CREATED_AT, c.UPDATED_AT, c.DELETED_AT):
        return TIMESTAMP
    if name == c.DATA_VERSION_BY_FIELD:
        return schema[c.PROVENANCE_BY_FIELD]
    return pl.String


def _fill_provenance(lf: pl.LazyFrame, names: set[str], keys: tuple[str, ...], ctx: WriteContext) -> pl.LazyFrame:
    lf = lf.with_columns(pl.col(c.PROVENANCE_BY_FIELD).cast(pl.Struct({k: pl.String for k in keys})))
    computed = sample_hash_expr(c.PROVENANCE_BY_FIELD, keys, ctx.algorithm, ctx.length)
    if c.PROVENANCE not in names:
        if not ctx.is_root and not ctx.preserve_feature_version:
            warnings.warn(
                f"Writing '{ctx.feature}' without '{c.PROVENANCE}': computing it from '{c.PROVENANCE_BY_FIELD}'. "
                "Hint: write the frames returned by resolve_update, which carry it.",
                MetaxyWarning,
                stacklevel=4,
            )
        return lf.with_columns(computed.alias(c.PROVENANCE))
    return lf.with_columns(pl.col(c.PROVENANCE).fill_null(computed))


def _fill_data_versions(lf: pl.LazyFrame, names: set[str], keys: tuple[str, ...], ctx: WriteContext) -> pl.LazyFrame:
    if c.DATA_VERSION_BY_FIELD not in names:
        return lf.with_columns(
            pl.col(c.PROVENANCE_BY_FIELD).alias(c.DATA_VERSION_BY_FIELD), pl.col(c.PROVENANCE).alias(c.DATA_VERSION)
        )
    given = lf.collect_schema()[c.DATA_VERSION_BY_FIELD]
    given_keys = set(_struct_keys(given))
    dv, prov = pl.col(c.DATA_VERSION_BY_FIELD), pl.col(c.PROVENANCE_BY_FIELD)
    filled = pl.struct(
        [
            (dv.struct.field(k).cast(pl.String) if k in given_keys else pl.lit(None, pl.String))
            .fill_null(prov.struct.field(k))
            .alias(k)
            for k in keys
        ]
    )
    lf = lf.with_columns(pl.when(dv.is_null()).then(prov).otherwise(filled).alias(c.DATA_VERSION_BY_FIELD))
    computed = sample_hash_expr(c.DATA_VERSION_BY_FIELD, keys, ctx.algorithm, ctx.length)
    if c.DATA_VERSION not in names:
        return lf.with_columns(computed.alias(c.DATA_VERSION))
    return lf.with_columns(pl.col(c.DATA_VERSION).fill_null(pl.col(c.PROVENANCE)))


def _stamp(lf: pl.LazyFrame, names: set[str], ctx: WriteContext) -> pl.LazyFrame:
    now = pl.lit(ctx.now, TIMESTAMP)
    keep_versions = ctx.preserve_feature_version and {c.FEATURE_VERSION, c.PROJECT_VERSION} <= names
    cols: list[pl.Expr] = []
    if not keep_versions:
        cols += [
            pl.lit(ctx.feature_version).alias(c.FEATURE_VERSION),
            pl.lit(ctx.project_version).alias(c.PROJECT_VERSION),
        ]
    cols.append(
        pl.col(c.CREATED_AT).cast(TIMESTAMP).fill_null(now) if c.CREATED_AT in names else now.alias(c.CREATED_AT)
    )
    if ctx.keep_timestamps and c.UPDATED_AT in names:
        cols.append(pl.col(c.UPDATED_AT).cast(TIMESTAMP).fill_null(now))
    else:
        cols.append(now.alias(c.UPDATED_AT))
    if c.DELETED_AT in names and ctx.keep_timestamps:
        cols.append(pl.col(c.DELETED_AT).cast(TIMESTAMP))
    else:
        cols.append(pl.lit(None, TIMESTAMP).alias(c.DELETED_AT))
    cols.append(pl.lit(ctx.materialization_id, pl.String).alias(c.MATERIALIZATION_ID))
    return lf.with_columns(cols)
