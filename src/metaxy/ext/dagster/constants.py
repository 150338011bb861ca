"""Metadata, tag and kind keys shared by the Dagster integration (spec §1).

Dagster tag *values* must match ``[A-Za-z0-9_.-]{0,63}``, so tags carry a feature's table name
(``audio__embeddings``) while metadata carries its slash key (``audio/embeddings``).
"""

from __future__ import annotations

__all__ = [
    "DAGSTER_COLUMN_LINEAGE_METADATA_KEY",
    "DAGSTER_COLUMN_SCHEMA_METADATA_KEY",
    "DAGSTER_METAXY_CODE_VERSION_METADATA_KEY",
    "DAGSTER_METAXY_ERROR_METADATA_KEY",
    "DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY",
    "DAGSTER_METAXY_FEATURE_METADATA_KEY",
    "DAGSTER_METAXY_FEATURE_VERSION_METADATA_KEY",
    "DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY",
    "DAGSTER_METAXY_INFO_METADATA_KEY",
    "DAGSTER_METAXY_KIND",
    "DAGSTER_METAXY_MATERIALIZED_IN_RUN_METADATA_KEY",
    "DAGSTER_METAXY_PARTITION_KEY",
    "DAGSTER_METAXY_PARTITION_METADATA_KEY",
    "DAGSTER_METAXY_PROJECT_METADATA_KEY",
    "DAGSTER_METAXY_PROJECT_TAG_KEY",
    "DAGSTER_METAXY_STORE_METADATA_KEY",
    "METAXY_DAGSTER_METADATA_KEY",
]

DAGSTER_METAXY_FEATURE_METADATA_KEY = "metaxy/feature"
"""Asset metadata key naming the Metaxy feature (``"a/b"``); as a tag key its value is the table name."""

DAGSTER_METAXY_KIND = "metaxy"
"""Kind added to Metaxy assets (Dagster stores it as the tag ``dagster/kind/metaxy``)."""

DAGSTER_METAXY_PARTITION_KEY = "partition_by"
"""Asset metadata key naming the column that holds Dagster partition keys.

The value is a column name, or ``{dimension: column}`` for a ``MultiPartitionsDefinition``.
"""

DAGSTER_METAXY_PARTITION_METADATA_KEY = "metaxy/partition"
"""Asset metadata key holding a static slice ``{column: value | [values]}`` an asset owns."""

DAGSTER_METAXY_PROJECT_TAG_KEY = "metaxy/project"
"""Asset tag holding the feature's project."""

DAGSTER_METAXY_INFO_METADATA_KEY = "metaxy/info"
"""The published library's ``{"feature": {...}, "metaxy": {...}}`` blob (``build_feature_info_metadata``).

metaxy no longer attaches it to assets or events: the short entries below replace it."""

DAGSTER_METAXY_FEATURE_VERSION_METADATA_KEY = "metaxy/feature_version"
"""Asset and event metadata: the feature version (the asset's definition / the rows an event describes)."""

DAGSTER_METAXY_CODE_VERSION_METADATA_KEY = "metaxy/code_version"
"""Asset and event metadata: the feature's code version (its own fields only)."""

DAGSTER_METAXY_PROJECT_METADATA_KEY = "metaxy/project"
"""Asset and event metadata: the feature's project."""

DAGSTER_METAXY_STORE_METADATA_KEY = "metaxy/store"
"""Event metadata: where the rows were found — the store's ``display()`` (credentials masked)."""

DAGSTER_METAXY_MATERIALIZED_IN_RUN_METADATA_KEY = "metaxy/materialized_in_run"
"""Event metadata: samples of the asset whose current row was written by this run."""

DAGSTER_METAXY_ERROR_METADATA_KEY = "metaxy/error"
"""Event metadata carrying the message of an error met while building Metaxy metadata."""

DAGSTER_COLUMN_SCHEMA_METADATA_KEY = "dagster/column_schema"
DAGSTER_COLUMN_LINEAGE_METADATA_KEY = "dagster/column_lineage"

DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY = "metaxy/feature_version"
DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY = "metaxy/feature_code_version"

METAXY_DAGSTER_METADATA_KEY = "dagster/attributes"
"""Key inside a Metaxy ``FeatureSpec.metadata`` holding Dagster asset attributes (``asset_key``,
``group_name``, ``owners``, ``tags``, ``metadata``, ``kinds``, ``deps``, ...)."""
