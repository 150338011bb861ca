"""The ``delete`` op: soft- or hard-delete a feature's rows from the ``metaxy_store`` resource (spec §13).

The published documentation's delete job binds the store as ``metaxy_store``; jobs that also run
assets bind the same resource under both keys (``{"store": r, "metaxy_store": r}``).
"""

# No `from __future__ import annotations`: Dagster resolves the op config annotation at runtime.

import dagster as dg
from pydantic import Field, field_validator

from metaxy.models.keys import FeatureKey

__all__ = ["DeleteMetadataConfig", "delete"]


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


@dg.op(required_resource_keys={"metaxy_store"})
def delete(context: dg.OpExecutionContext, config: DeleteMetadataConfig) -> int:
    """Delete a feature's rows matching ``filters`` from the ``metaxy_store`` resource.

    Soft deletes (the default) keep history and are visible with ``include_soft_deleted=True``;
    hard deletes remove the rows. Filters are parsed (never pasted into SQL).

    Returns:
        The number of rows marked (soft) or removed (hard).
    """
    key = FeatureKey(config.feature_key)
    store = context.resources.metaxy_store
    kind = "Soft" if config.soft else "Hard"
    context.log.info(f"{kind}-deleting rows of '{key}' matching {config.filters or 'everything'} in {store.display()}")
    with store.open("w"):
        count = int(store.delete(key, filters=config.filters or None, soft=config.soft))
    context.log.info(f"{kind}-deleted {count} rows of '{key}'.")
    return count
