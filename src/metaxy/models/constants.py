"""Names of the system columns metaxy adds to every feature table (all prefixed ``metaxy_``)."""

from __future__ import annotations

__all__ = [
    # the published names (same values)
    "ALL_SYSTEM_COLUMNS",
    "CREATED_AT",
    "DATA_VERSION",
    "DATA_VERSION_BY_FIELD",
    "DEFAULT_CODE_VERSION",
    "DEFINITION_VERSION",
    "DELETED_AT",
    "FEATURE_VERSION",
    "MATERIALIZATION_ID",
    "METAXY_CREATED_AT",
    "METAXY_DATA_VERSION",
    "METAXY_DATA_VERSION_BY_FIELD",
    "METAXY_DEFINITION_VERSION",
    "METAXY_DELETED_AT",
    "METAXY_FEATURE_VERSION",
    "METAXY_MATERIALIZATION_ID",
    "METAXY_PROJECT_VERSION",
    "METAXY_PROVENANCE",
    "METAXY_PROVENANCE_BY_FIELD",
    "METAXY_SYSTEM_COLUMN_PREFIX",
    "METAXY_UPDATED_AT",
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


# --- the published Metaxy names of the same constants --------------------------------------------
# Code written against the published documentation imports these (``METAXY_PROVENANCE_BY_FIELD`` ...);
# they are the same strings as the short names above.
METAXY_SYSTEM_COLUMN_PREFIX = "metaxy_"
METAXY_PROVENANCE_BY_FIELD = PROVENANCE_BY_FIELD
METAXY_PROVENANCE = PROVENANCE
METAXY_DATA_VERSION_BY_FIELD = DATA_VERSION_BY_FIELD
METAXY_DATA_VERSION = DATA_VERSION
METAXY_FEATURE_VERSION = FEATURE_VERSION
METAXY_PROJECT_VERSION = PROJECT_VERSION
METAXY_CREATED_AT = CREATED_AT
METAXY_UPDATED_AT = UPDATED_AT
METAXY_DELETED_AT = DELETED_AT
METAXY_MATERIALIZATION_ID = MATERIALIZATION_ID
METAXY_DEFINITION_VERSION = DEFINITION_VERSION
ALL_SYSTEM_COLUMNS: frozenset[str] = SYSTEM_COLUMNS
DEFAULT_CODE_VERSION = "__metaxy_initial__"
