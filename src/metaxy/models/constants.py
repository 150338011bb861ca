"""Names of the system columns metaxy adds to every feature table (all prefixed ``metaxy_``)."""

from __future__ import annotations

__all__ = [
    "CREATED_AT",
    "DATA_VERSION",
    "DATA_VERSION_BY_FIELD",
    "DEFINITION_VERSION",
    "DELETED_AT",
    "FEATURE_VERSION",
    "MATERIALIZATION_ID",
    "PROJECT_VERSION",
    "PROVENANCE",
    "PROVENANCE_BY_FIELD",
    "SYSTEM_COLUMNS",
    "SYSTEM_KEY_PREFIX",
    "UPDATED_AT",
    "VERSIONING_COLUMNS",
    "is_system_column",
]

PROVENANCE_BY_FIELD = "metaxy_provenance_by_field"
PROVENANCE = "metaxy_provenance"
DATA_VERSION_BY_FIELD = "metaxy_data_version_by_field"
DATA_VERSION = "metaxy_data_version"
FEATURE_VERSION = "metaxy_feature_version"
PROJECT_VERSION = "metaxy_project_version"
CREATED_AT = "metaxy_created_at"
UPDATED_AT = "metaxy_updated_at"
DELETED_AT = "metaxy_deleted_at"
MATERIALIZATION_ID = "metaxy_materialization_id"
DEFINITION_VERSION = "metaxy_definition_version"

# The four per-sample version columns that travel through a resolve (suffixed per upstream).
VERSIONING_COLUMNS: tuple[str, ...] = (PROVENANCE_BY_FIELD, PROVENANCE, DATA_VERSION_BY_FIELD, DATA_VERSION)

# Reserved names: no user column (or rename target) may use them.
SYSTEM_COLUMNS: frozenset[str] = frozenset(
    {
        *VERSIONING_COLUMNS,
        FEATURE_VERSION,
        PROJECT_VERSION,
        CREATED_AT,
        UPDATED_AT,
        DELETED_AT,
        MATERIALIZATION_ID,
    }
)

SYSTEM_KEY_PREFIX = "metaxy-system"


def is_system_column(name: str) -> bool:
    """Whether ``name`` is one of metaxy's reserved system column names."""
    return name in SYSTEM_COLUMNS
