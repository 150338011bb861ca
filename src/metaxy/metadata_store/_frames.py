"""Frame handling shared by every store: coercing user frames to Polars, applying filters, and
normalising the system columns of a write (spec §4, §5.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import narwhals as nw
import polars as pl

from metaxy import frames
from metaxy._warnings import warn_at_caller
from metaxy.errors import ColumnNotFoundError, MetadataSchemaError, MetaxyWarning
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.filter_expression import coerce_filters as _coerce_filters
from metaxy.versioning.content import apply_content_versions
from metaxy.versioning.hashing import HashAlgorithm
from metaxy.versioning.polars_executor import sample_hash_expr
from metaxy.versioning.representation import BY_FIELD_COLUMNS, maps_from_structs, structs_from_maps

__all__ = [
    "TIMESTAMP",
    "WriteContext",
    "apply_filters",
    "check_columns",
    "coerce_filters",
    "filter_columns",
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
    """:func:`metaxy.frames.to_polars_lazy` for a frame handed to a store method.

    Raises:
        MetadataSchemaError: ``df`` is not a dataframe.
    """
    try:
        return frames.to_polars_lazy(df)
    except TypeError as exc:
        raise MetadataSchemaError(
            f"Cannot use a {type(df).__name__} as a metadata frame. "
            "Hint: pass a Polars, pandas or PyArrow frame (or a narwhals / lazy frame)."
        ) from exc


def coerce_filters(filters: FilterLike | Sequence[FilterLike] | None) -> list[FilterLike]:
    """A filter, a list of them, or None, as a list; SQL strings are parsed.

    Raises:
        FilterParseError: a string does not parse, or an item is not a filter (``filters=5``).
    """
    return list(_coerce_filters(filters))


def filter_columns(f: FilterLike) -> frozenset[str] | None:
    """Columns a filter reads; None when it cannot be told (narwhals expressions)."""
    if isinstance(f, FilterExpression):
        return f.columns
    if isinstance(f, pl.Expr):
        return frozenset(f.meta.root_names())
    return None


def check_columns(
    where: str,
    available: Sequence[str],
    *,
    filters: Sequence[FilterLike] = (),
    columns: Sequence[str] | None = None,
) -> None:
    """Refuse filters / a ``columns=`` list that name columns ``available`` lacks (exact, case-sensitive).

    Raises:
        ColumnNotFoundError: naming the unknown columns and listing the available ones.
    """
    names = set(available)
    shown = ", ".join(available) or "(none)"
    for f in filters:
        used = filter_columns(f)
        missing = sorted(used - names) if used is not None else []
        if missing:
            text = f.source if isinstance(f, FilterExpression) else str(f)
            raise ColumnNotFoundError(
                f"Filter {text!r} on {where} uses unknown column(s) {missing}. Available columns: {shown}. "
                'Hint: column names are case-sensitive; quote names with special characters as "My Col".',
                missing,
            )
    if columns is not None:
        if isinstance(columns, str):
            raise MetadataSchemaError(
                f"columns= must be a list of column names, got the string {columns!r}. Hint: columns=[{columns!r}]."
            )
        missing = sorted({col for col in columns if col not in names})
        if missing:
            raise ColumnNotFoundError(
                f"columns= on {where} names unknown column(s) {missing}. Available columns: {shown}. "
                "Hint: column names are case-sensitive.",
                missing,
            )


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
    data_version_columns: dict[str, tuple[str, ...]] | None = None  # issue 22: {field struct key: columns}


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
    lf = _canonical_user_types(lf, schema, ctx)
    names = set(schema.names())
    null_typed = [n for n, dt in schema.items() if n in c.SYSTEM_COLUMNS and dt == pl.Null]
    if null_typed:
        lf = lf.with_columns([pl.col(n).cast(_system_dtype(n, schema)) for n in null_typed])
        names -= set(null_typed) & {c.PROVENANCE, c.DATA_VERSION, c.DATA_VERSION_BY_FIELD}
        lf = lf.drop([n for n in null_typed if n not in names])
    keys = tuple(_struct_keys(lf.collect_schema()[c.PROVENANCE_BY_FIELD]))
    lf = _refuse_nulls(lf, ctx, [k for k in keys if k in ctx.field_struct_keys])
    lf = _fill_provenance(lf, names, keys, ctx)
    lf, names = apply_content_versions(lf, names, keys, ctx)  # issue 22 hook: content-based data versions
    lf = _fill_data_versions(lf, names, keys, ctx)
    lf = _stamp(lf, names, ctx)
    user = [n for n in lf.collect_schema().names() if n not in c.SYSTEM_COLUMNS]
    lf = lf.select(*user, *SYSTEM_ORDER)
    return maps_from_structs(lf, {col: keys for col in BY_FIELD_COLUMNS}) if ctx.map_mode else lf


def _check_columns(schema: pl.Schema, ctx: WriteContext) -> None:
    names = schema.names()
    hint = f"Available columns: {', '.join(names) or '(none)'}."
    folded: dict[str, str] = {}
    for name in names:
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            raise MetadataSchemaError(
                f"Feature '{ctx.feature}': columns '{other}' and '{name}' differ only by case. "
                "Hint: rename one of them; SQL stores treat identifiers case-insensitively and could not "
                "keep both."
            )
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


def _canonical_user_types(lf: pl.LazyFrame, schema: pl.Schema, ctx: WriteContext) -> pl.LazyFrame:
    """User columns in the types every store keeps and reads back alike: categoricals and enums
    as strings, zoned datetimes in UTC (the same instants).

    Raises:
        MetadataSchemaError: a Duration or Object column (no store reads one back reliably).
    """
    casts = []
    for name, dtype in schema.items():
        if name in c.SYSTEM_COLUMNS:
            continue
        target = _canonical_dtype(dtype, name, ctx.feature)
        if target != dtype:
            casts.append(pl.col(name).cast(target))
    return lf.with_columns(casts) if casts else lf


def _canonical_dtype(dtype: Any, column: str, feature: str) -> Any:
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    if isinstance(dtype, pl.Datetime) and dtype.time_zone not in (None, "UTC"):
        return pl.Datetime(dtype.time_unit, "UTC")
    if isinstance(dtype, pl.Duration | pl.Object):
        raise MetadataSchemaError(
            f"Feature '{feature}': column '{column}' has type {dtype}, which metaxy does not store (the stores "
            "cannot all read it back). Hint: cast it first, e.g. a Duration to Int64 microseconds with "
            f"pl.col('{column}').dt.total_microseconds()."
        )
    if isinstance(dtype, pl.List):
        return pl.List(_canonical_dtype(dtype.inner, column, feature))
    if isinstance(dtype, pl.Array):
        return pl.Array(_canonical_dtype(dtype.inner, column, feature), dtype.shape)
    if isinstance(dtype, pl.Struct):
        return pl.Struct([pl.Field(f.name, _canonical_dtype(f.dtype, column, feature)) for f in dtype.fields])
    return dtype


def _refuse_nulls(lf: pl.LazyFrame, ctx: WriteContext, fields: Sequence[str]) -> pl.LazyFrame:
    """Fail the write on a null id or a null provenance value: such a sample could never be
    matched, so it would be recomputed forever.

    The check runs inside the frame's own evaluation, batch by batch as the store consumes it
    (one pass, streaming): the store's write fails and writes nothing. Markers and copies of
    stored rows (``keep_timestamps``) were validated when first written.

    Raises:
        MetadataSchemaError: (when the store evaluates the frame) naming the column and count.
    """
    if ctx.keep_timestamps:
        return lf
    provenance = pl.col(c.PROVENANCE_BY_FIELD)
    checks = [pl.col(i).is_null().alias(i) for i in ctx.id_columns]
    checks += [provenance.struct.field(k).is_null().alias(f"{c.PROVENANCE_BY_FIELD}.{k}") for k in fields]
    return lf.filter(pl.struct(checks).map_batches(_NullCheck(ctx), return_dtype=pl.Boolean, is_elementwise=True))


class _NullCheck:
    """The batch-wise null check of :func:`_refuse_nulls` (a picklable callable: Polars may ship
    the plan to another thread)."""

    def __init__(self, ctx: WriteContext) -> None:
        self.feature = ctx.feature
        self.id_columns = ctx.id_columns

    def __call__(self, flags: pl.Series) -> pl.Series:
        frame = flags.struct.unnest()
        for name in frame.columns:
            count = int(frame.get_column(name).sum())
            if count:
                what = "id column" if name in self.id_columns else "provenance value"
                raise MetadataSchemaError(
                    f"Feature '{self.feature}': {count} row(s) have a null {what} '{name}'. Hint: every sample "
                    "needs a non-null id and a non-null provenance string per field (a null could never match, "
                    "so the sample would be recomputed forever); drop or fill those rows."
                )
        return pl.Series(flags.name, [True] * len(flags), dtype=pl.Boolean)


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
            warn_at_caller(
                f"Writing '{ctx.feature}' without '{c.PROVENANCE}': computing it from '{c.PROVENANCE_BY_FIELD}'. "
                "Hint: write the frames returned by resolve_update, which carry it.",
                MetaxyWarning,
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
