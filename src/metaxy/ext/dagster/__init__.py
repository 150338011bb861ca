"""Metaxy ↔ Dagster: ``metaxify`` assets, store features with ``MetaxyIOManager``.

Import as ``import metaxy.ext.dagster as mxd``. Importing this module imports Dagster;
``import metaxy`` does not.

Example:
    >>> import dagster as dg
    >>> import metaxy.ext.dagster as mxd
    >>> @mxd.metaxify(feature="audio/embeddings")  # doctest: +SKIP
    ... @dg.asset(io_manager_key="metaxy_io_manager")
    ... def audio_embeddings() -> mxd.MetaxyOutput: ...
"""

from __future__ import annotations

from metaxy.ext.dagster._features import build_feature_event_tags, build_feature_info_metadata
from metaxy.ext.dagster._partitions import build_partition_filter, get_partition_filter
from metaxy.ext.dagster._preview import build_table_preview_metadata
from metaxy.ext.dagster._runtime import FeatureStats, compute_feature_stats, compute_stats_from_lazy_frame
from metaxy.ext.dagster._schema import build_column_lineage, build_column_schema
from metaxy.ext.dagster.checks import (
    METAXY_FAILURES_CHECK,
    METAXY_NO_ORPHANS_CHECK,
    METAXY_UP_TO_DATE_CHECK,
    build_metaxy_asset_checks,
    build_metaxy_check_specs,
    metaxy_check_results,
)
from metaxy.ext.dagster.cleanup import DeleteMetadataConfig, delete
from metaxy.ext.dagster.constants import (
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
    DAGSTER_METAXY_KIND,
    DAGSTER_METAXY_PARTITION_KEY,
    DAGSTER_METAXY_PARTITION_METADATA_KEY,
    DAGSTER_METAXY_PROJECT_TAG_KEY,
    METAXY_DAGSTER_METADATA_KEY,
)
from metaxy.ext.dagster.dagster_type import feature_to_dagster_type
from metaxy.ext.dagster.errors import MetaxyDagsterError, MetaxyIOManagerError, MetaxyPartitionError
from metaxy.ext.dagster.failures import METAXY_FAILED_METADATA_KEY, record_failures
from metaxy.ext.dagster.io_manager import MetaxyIOManager, MetaxyOutput
from metaxy.ext.dagster.metaxify import metaxify
from metaxy.ext.dagster.observation import (
    build_metaxy_multi_observation_job,
    build_metaxy_observation_job,
    observable_metaxy_asset,
)
from metaxy.ext.dagster.resources import MetaxyStoreFromConfigResource
from metaxy.ext.dagster.selection import select_metaxy_assets
from metaxy.ext.dagster.utils import generate_materialize_results, generate_observe_results, generate_outputs


def _register_library() -> None:
    """Show metaxy in Dagster's "libraries" list (best effort: the registry is not public API)."""
    try:
        from dagster_shared.libraries import DagsterLibraryRegistry

        from metaxy._version import __version__

        DagsterLibraryRegistry.register("metaxy.ext.dagster", __version__, is_dagster_package=False)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - depends on the Dagster version
        pass


_register_library()

__all__ = [
    "DAGSTER_METAXY_FEATURE_METADATA_KEY",
    "DAGSTER_METAXY_INFO_METADATA_KEY",
    "DAGSTER_METAXY_KIND",
    "DAGSTER_METAXY_PARTITION_KEY",
    "DAGSTER_METAXY_PARTITION_METADATA_KEY",
    "DAGSTER_METAXY_PROJECT_TAG_KEY",
    "METAXY_DAGSTER_METADATA_KEY",
    "METAXY_FAILED_METADATA_KEY",
    "METAXY_FAILURES_CHECK",
    "METAXY_NO_ORPHANS_CHECK",
    "METAXY_UP_TO_DATE_CHECK",
    "DeleteMetadataConfig",
    "FeatureStats",
    "MetaxyDagsterError",
    "MetaxyIOManager",
    "MetaxyIOManagerError",
    "MetaxyOutput",
    "MetaxyPartitionError",
    "MetaxyStoreFromConfigResource",
    "build_column_lineage",
    "build_column_schema",
    "build_feature_event_tags",
    "build_feature_info_metadata",
    "build_metaxy_asset_checks",
    "build_metaxy_check_specs",
    "build_metaxy_multi_observation_job",
    "build_metaxy_observation_job",
    "build_partition_filter",
    "build_table_preview_metadata",
    "compute_feature_stats",
    "compute_stats_from_lazy_frame",
    "delete",
    "feature_to_dagster_type",
    "generate_materialize_results",
    "generate_observe_results",
    "generate_outputs",
    "get_partition_filter",
    "metaxify",
    "metaxy_check_results",
    "observable_metaxy_asset",
    "record_failures",
    "select_metaxy_assets",
]
