"""``feature_to_dagster_type``: a ``DagsterType`` for outputs holding a feature's metadata (spec §13)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import narwhals as nw

from ._features import build_feature_info_metadata, resolve_definition
from ._schema import build_column_lineage, build_column_schema
from .constants import (
    DAGSTER_COLUMN_LINEAGE_METADATA_KEY,
    DAGSTER_COLUMN_SCHEMA_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
)
from .io_manager import MetaxyOutput

__all__ = ["feature_to_dagster_type"]


def feature_to_dagster_type(
    feature: Any,
    *,
    name: str | None = None,
    description: str | None = None,
    inject_column_schema: bool = True,
    inject_column_lineage: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> dg.DagsterType:
    """A ``DagsterType`` for outputs holding a feature's metadata frame.

    The type check accepts None and any narwhals-compatible frame (Polars, pandas, PyArrow,
    narwhals); its metadata carries ``metaxy/info``, the column schema and (for features with
    upstream) the column lineage.
    """
    defn = resolve_definition(feature)
    key = defn.key
    md: dict[str, Any] = {**(metadata or {}), DAGSTER_METAXY_INFO_METADATA_KEY: build_feature_info_metadata(key)}
    if inject_column_schema and not defn.is_external:
        md[DAGSTER_COLUMN_SCHEMA_METADATA_KEY] = build_column_schema(feature if isinstance(feature, type) else key)
    if inject_column_lineage:
        lineage = build_column_lineage(key)
        if lineage is not None:
            md[DAGSTER_COLUMN_LINEAGE_METADATA_KEY] = lineage
    doc = defn.spec.description or (feature.__doc__ if isinstance(feature, type) else None)

    def check(_context: Any, value: Any) -> dg.TypeCheck:
        if value is None:
            return dg.TypeCheck(success=True)
        try:
            nw.from_native(value)
        except TypeError:
            return dg.TypeCheck(
                success=False,
                description=f"Metaxy feature '{key}' expects a dataframe (or None), got {type(value).__name__}.",
            )
        return dg.TypeCheck(success=True)

    return dg.DagsterType(
        type_check_fn=check,
        name=name or key.table_name,
        description=description or (doc.strip() if doc else f"Metaxy feature '{key}'."),
        typing_type=MetaxyOutput,
        metadata=md,
    )
