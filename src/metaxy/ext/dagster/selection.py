"""``select_metaxy_assets``: an ``AssetSelection`` of metaxified assets by project and feature (spec §13)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from metaxy.models.keys import coerce_to_feature_key

from .constants import DAGSTER_METAXY_FEATURE_METADATA_KEY, DAGSTER_METAXY_PROJECT_TAG_KEY
from .errors import MetaxyDagsterError

__all__ = ["select_metaxy_assets"]


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
