"""Content-based data versions (early cutoff): a feature's ``metaxy_data_version_by_field`` hashed
from the values it writes, so a recomputed sample whose content did not change keeps its data
version and its downstream samples stay up to date.

``FeatureSpec(data_version_columns=[...])`` (every field hashes those columns) or
``{field: [columns]}`` (per field; a field not named keeps its provenance as data version).

The hash, per sample and field: the named columns (in the order given) as one JSON object,
``pl.struct(columns).struct.json_encode()`` (Binary columns hex-encoded first), hashed with the
store's algorithm and cut to the configured truncation length — the same helper that hashes
provenance. It is computed in the shared Polars write path (``normalize_write``), so every store
computes the same string.

Stable: strings, integers, booleans, nulls, dates, lists and structs of those, across stores and
runs. Depends on Polars' JSON rendering: floats (``1.0`` vs ``1``: the dtype matters, so a column
cast from Int64 to Float64 changes every data version), datetimes (rendered with their unit and
zone). Renaming or reordering the listed columns changes every data version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from metaxy.errors import MetadataSchemaError
from metaxy.models import constants as c

if TYPE_CHECKING:
    from metaxy.metadata_store._frames import WriteContext
    from metaxy.models.feature_spec import FeatureSpec

__all__ = ["apply_content_versions", "coerce_data_version_columns", "content_columns", "content_hash_expr"]


def coerce_data_version_columns(value: Any) -> tuple[str, ...] | dict[str, tuple[str, ...]] | None:
    """The spec field's value, validated: a non-empty list of column names, or a mapping of field
    key strings to such lists.

    Raises:
        ValueError: empty, not strings, or a reserved ``metaxy_`` column (pydantic wraps it).
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): _columns(v, f"data_version_columns['{k}']") for k, v in value.items()} or None
    return _columns(value, "data_version_columns")


def _columns(value: Any, where: str) -> tuple[str, ...]:
    cols = (value,) if isinstance(value, str) else tuple(value)
    if not cols or not all(isinstance(col, str) and col for col in cols):
        raise ValueError(f"{where} must be a non-empty list of column names, got {value!r}. Hint: e.g. ['text'].")
    reserved = [col for col in cols if c.is_system_column(col)]
    if reserved:
        raise ValueError(
            f"{where} names metaxy system column(s) {reserved}. Hint: list the feature's own (user) columns."
        )
    return cols


def content_columns(spec: FeatureSpec) -> dict[str, tuple[str, ...]] | None:
    """``{field struct key: columns}`` of a spec's ``data_version_columns``; None when unset."""
    declared = spec.data_version_columns
    if declared is None:
        return None
    fields = {f.key.to_string(): f.key.to_struct_key() for f in spec.fields}
    if isinstance(declared, dict):
        return {fields[name]: cols for name, cols in declared.items()}
    return dict.fromkeys(fields.values(), declared)


def content_hash_expr(columns: Sequence[str], schema: pl.Schema, algorithm: Any, length: int) -> pl.Expr:
    """The hash of ``columns``' values as one JSON object (see the module docstring)."""
    from metaxy.versioning.polars_executor import hash_expr

    parts = [pl.col(col).bin.encode("hex").alias(col) if schema[col] == pl.Binary else pl.col(col) for col in columns]
    return hash_expr(pl.struct(parts).struct.json_encode(), algorithm, length)


def apply_content_versions(
    lf: pl.LazyFrame, names: set[str], keys: tuple[str, ...], ctx: WriteContext
) -> tuple[pl.LazyFrame, set[str]]:
    """``metaxy_data_version_by_field`` from content, for a feature with ``data_version_columns``.

    Per sample and field, a given data version that differs from the provenance wins (the user
    supplied it); a missing one, a null, or a copy of the provenance (what ``resolve_update``
    frames carry) is replaced by the content hash. ``metaxy_data_version`` is then recomputed from
    the by-field struct. Copies and rebases (``preserve_feature_version`` / ``keep_timestamps``)
    keep the stored values.

    Raises:
        MetadataSchemaError: a listed column is missing from the written frame.
    """
    columns = ctx.data_version_columns
    if not columns or ctx.preserve_feature_version or ctx.keep_timestamps:
        return lf, names
    schema = lf.collect_schema()
    missing = sorted({col for cols in columns.values() for col in cols if col not in schema})
    if missing:
        raise MetadataSchemaError(
            f"Feature '{ctx.feature}' derives its data version from columns {missing}, which the written frame "
            f"lacks. Available columns: {', '.join(schema.names())}. Hint: write those columns, or change the "
            "spec's data_version_columns."
        )
    prov = pl.col(c.PROVENANCE_BY_FIELD)
    given_keys: set[str] = set()
    given_dtype = schema.get(c.DATA_VERSION_BY_FIELD)
    if c.DATA_VERSION_BY_FIELD in names and isinstance(given_dtype, pl.Struct):
        given_keys = {f.name for f in given_dtype.fields}
    values = []
    for k in keys:
        own = prov.struct.field(k)
        given = pl.col(c.DATA_VERSION_BY_FIELD).struct.field(k).cast(pl.String) if k in given_keys else None
        if k in columns:
            content = content_hash_expr(columns[k], schema, ctx.algorithm, ctx.length)
            value = (
                content if given is None else pl.when(given.is_null() | (given == own)).then(content).otherwise(given)
            )
        else:
            value = own if given is None else given.fill_null(own)
        values.append(value.alias(k))
    lf = lf.with_columns(pl.struct(values).alias(c.DATA_VERSION_BY_FIELD))
    if c.DATA_VERSION in names:
        lf = lf.drop(c.DATA_VERSION)
    return lf, (names | {c.DATA_VERSION_BY_FIELD}) - {c.DATA_VERSION}
