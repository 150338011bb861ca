"""Small helpers: asset selection by project/feature, a DagsterType per feature, a delete op (spec §13)."""

# No `from __future__ import annotations`: Dagster resolves the op config annotation at runtime.

from collections.abc import Mapping
from typing import Any

import dagster as dg
import narwhals as nw
from pydantic import Field, field_validator

from metaxy.models.keys import FeatureKey, coerce_to_feature_key

from ._features import build_feature_info_metadata, resolve_definition
from ._schema import build_column_lineage, build_column_schema
from .constants import (
    DAGSTER_COLUMN_LINEAGE_METADATA_KEY,
    DAGSTER_COLUMN_SCHEMA_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
    DAGSTER_METAXY_PROJECT_TAG_KEY,
)
from .errors import MetaxyDagsterError
from .io_manager import MetaxyOutput

__all__ = ["DeleteMetadataConfig", "delete", "feature_to_dagster_type", "select_metaxy_assets"]


def select_metaxy_assets(*, project: str | None = None, feature: Any = None) -> dg.AssetSelection:
    """The metaxified assets of ``project`` (default: the configured project), optionally of one feature.

    Selects by the ``metaxy/project`` and ``metaxy/feature`` tags that ``metaxify`` sets (and keeps
    when features add their own tags), external assets (``AssetSpec``) included.

    Raises:
        MetaxyDagsterError: no project given and none configured.
    """
    from metaxy.config import MetaxyConfig

    project = project or MetaxyConfig.current_or_default().project
    if not project:
        raise MetaxyDagsterError("project must be specified or configured in MetaxyConfig (metaxy.toml `project`).")
    selection = dg.AssetSelection.tag(DAGSTER_METAXY_PROJECT_TAG_KEY, project, include_sources=True)
    if feature is not None:
        key = coerce_to_feature_key(feature)
        by_feature = dg.AssetSelection.tag(DAGSTER_METAXY_FEATURE_METADATA_KEY, key.table_name, include_sources=True)
        selection = selection & by_feature
    return selection


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


class DeleteMetadataConfig(dg.Config):
    """Run config of the :data:`delete` op."""

    feature_key: list[str] = Field(description="The feature key parts, e.g. ['video', 'raw'].")
    filters: list[str] = Field(default_factory=list, description="SQL WHERE conditions, ANDed.")
    soft: bool = Field(default=True, description="Soft delete (append markers) or remove rows.")

    @field_validator("feature_key")
    @classmethod
    def _valid_key(cls, value: list[str]) -> list[str]:
        FeatureKey(value)  # raises on invalid parts
        return value


@dg.op(required_resource_keys={"store"})
def delete(context: dg.OpExecutionContext, config: DeleteMetadataConfig) -> int:
    """Delete a feature's rows matching ``filters`` from the ``store`` resource.

    Soft deletes (the default) keep history and are visible with ``include_soft_deleted=True``;
    hard deletes remove the rows. Filters are parsed (never pasted into SQL).

    Returns:
        The number of rows marked (soft) or removed (hard).
    """
    key = FeatureKey(config.feature_key)
    store = context.resources.store
    kind = "Soft" if config.soft else "Hard"
    context.log.info(f"{kind}-deleting rows of '{key}' matching {config.filters or 'everything'} in {store.display()}")
    with store.open("w"):
        count = int(store.delete(key, filters=config.filters or None, soft=config.soft))
    context.log.info(f"{kind}-deleted {count} rows of '{key}'.")
    return count
