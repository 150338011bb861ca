"""Feature ↔ asset linking: feature lookup, asset keys, info metadata, event tags.

The *asset-key registry* remembers, per feature graph, the asset keys ``metaxify`` gave each
feature, so downstream deps and column lineage point at the real upstream assets even when
these were renamed (``key=``), prefixed (``key_prefix``) or split into ``metaxy/partition``
slices (spec §16 G5, G10).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from metaxy._version import __version__
from metaxy.models.definition import FeatureDefinition
from metaxy.models.feature_spec import FeatureSpec
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import FeatureKey, coerce_to_feature_key

from .constants import (
    DAGSTER_METAXY_CODE_VERSION_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_VERSION_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY,
    DAGSTER_METAXY_PARTITION_METADATA_KEY,
    DAGSTER_METAXY_PROJECT_METADATA_KEY,
    METAXY_DAGSTER_METADATA_KEY,
)
from .errors import MetaxyDagsterError

__all__ = [
    "asset_key_for",
    "build_feature_event_tags",
    "build_feature_info_metadata",
    "dagster_attributes",
    "feature_key_from_metadata",
    "feature_metadata",
    "register_asset_key",
    "resolve_definition",
    "slice_from_metadata",
    "slice_key_suffix",
    "upstream_asset_keys",
]


def resolve_definition(feature: Any, graph: FeatureGraph | None = None) -> FeatureDefinition:
    """The definition of ``feature`` (class, key, key string, spec or definition) in the graph.

    Raises:
        FeatureNotInGraphError: the feature is not registered in the active graph.
    """
    if isinstance(feature, FeatureDefinition):
        return feature
    return (graph or current_graph()).get_feature_definition(coerce_to_feature_key(feature))


def feature_key_from_metadata(metadata: Mapping[str, Any] | None) -> FeatureKey | None:
    """The feature key named by ``metadata["metaxy/feature"]``, or None when absent.

    Raises:
        MetaxyDagsterError: the value is not a valid feature key.
    """
    if not metadata or DAGSTER_METAXY_FEATURE_METADATA_KEY not in metadata:
        return None
    value = metadata[DAGSTER_METAXY_FEATURE_METADATA_KEY]
    raw = getattr(value, "value", value)  # a TextMetadataValue once Dagster normalised it
    try:
        return coerce_to_feature_key(raw)
    except (ValueError, TypeError) as exc:
        raise MetaxyDagsterError(
            f"Asset metadata '{DAGSTER_METAXY_FEATURE_METADATA_KEY}' = {raw!r} is not a feature key: {exc} "
            "Hint: use a slash-separated key such as 'audio/embeddings'."
        ) from exc


def dagster_attributes(spec: FeatureSpec) -> dict[str, Any]:
    """``spec.metadata["dagster/attributes"]`` as a dict (empty when absent).

    Raises:
        MetaxyDagsterError: the entry is not a dict.
    """
    attrs = spec.metadata.get(METAXY_DAGSTER_METADATA_KEY)
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise MetaxyDagsterError(
            f"Feature '{spec.key}': metadata['{METAXY_DAGSTER_METADATA_KEY}'] is {type(attrs).__name__} "
            f"({attrs!r}), expected dict. Hint: set it to a dict of AssetSpec attributes, "
            "e.g. {'group_name': 'audio'}."
        )
    return dict(attrs)


def asset_key_for(spec: FeatureSpec) -> dg.AssetKey:
    """The default asset key of a feature (spec §2).

    ``dagster/attributes.asset_key`` when set (a string is one key part, as in Dagster), else
    the feature key's parts.
    """
    custom = dagster_attributes(spec).get("asset_key")
    if custom:
        return dg.AssetKey.from_coercible(custom)
    return dg.AssetKey(list(spec.key.parts))


_SLICE_PART = re.compile(r"[^A-Za-z0-9_]+")


def slice_key_suffix(slice_filter: Mapping[str, Any]) -> str:
    """The asset-key part naming a ``metaxy/partition`` slice: ``region_us``, ``category_a__region_eu``.

    Columns are sorted; list values are sorted and joined with ``_``; characters Dagster rejects in
    asset keys become ``_``.
    """
    parts = []
    for column in sorted(slice_filter):
        value = slice_filter[column]
        values = sorted(str(v) for v in value) if isinstance(value, list | tuple | set) else [str(value)]
        parts.append(_SLICE_PART.sub("_", "_".join([column, *values])))
    return "__".join(parts)


def slice_from_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``metaxy/partition`` slice dict of asset metadata, or None.

    Raises:
        MetaxyDagsterError: the entry is not a dict.
    """
    if not metadata or DAGSTER_METAXY_PARTITION_METADATA_KEY not in metadata:
        return None
    value = metadata[DAGSTER_METAXY_PARTITION_METADATA_KEY]
    value = getattr(value, "value", value)  # JsonMetadataValue once normalised
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MetaxyDagsterError(
            f"Asset metadata '{DAGSTER_METAXY_PARTITION_METADATA_KEY}' = {value!r} is not a dict. "
            "Hint: use {'column': value} or {'column': [values]}."
        )
    return dict(value)


# --- asset-key registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Registered:
    key: dg.AssetKey
    prefix: tuple[str, ...]


_REGISTRY: weakref.WeakKeyDictionary[FeatureGraph, dict[FeatureKey, list[_Registered]]] = weakref.WeakKeyDictionary()


def register_asset_key(feature: FeatureKey, key: dg.AssetKey, prefix: Sequence[str], graph: FeatureGraph) -> None:
    """Remember that ``feature`` is produced by the asset ``key`` (metaxified with ``prefix``)."""
    entries = _REGISTRY.setdefault(graph, {}).setdefault(feature, [])
    entry = _Registered(key, tuple(prefix))
    if entry not in entries:
        entries.append(entry)


def upstream_asset_keys(
    feature: FeatureKey, prefix: Sequence[str], graph: FeatureGraph | None = None
) -> list[dg.AssetKey]:
    """The asset keys a dependency on ``feature`` should point at.

    Preference order: assets metaxified for ``feature`` with the same ``key_prefix``; else every
    asset metaxified for it (renamed, prefixed differently, or one per ``metaxy/partition``
    slice); else ``key_prefix`` + the feature's default key (spec §2).
    """
    graph = graph or current_graph()
    entries = _REGISTRY.get(graph, {}).get(feature, [])
    same_prefix = [e.key for e in entries if e.prefix == tuple(prefix)]
    if same_prefix:
        return same_prefix
    if entries:
        return _unique(e.key for e in entries)
    default = asset_key_for(graph.get_feature_definition(feature).spec)
    return [dg.AssetKey([*prefix, *default.path])]


def _unique(keys: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
    out: list[dg.AssetKey] = []
    for k in keys:
        if k not in out:
            out.append(k)
    return out


# --- info metadata and event tags ------------------------------------------------------------


def build_feature_info_metadata(feature: Any) -> dict[str, Any]:
    """The ``metaxy/info`` dict: the feature (project, spec, version, type) and the library.

    Args:
        feature: feature class, key, key string or definition.

    Returns:
        ``{"feature": {"project", "spec", "version", "type"}, "metaxy": {"version", "plugins"}}``.
    """
    from metaxy.config import MetaxyConfig

    graph = current_graph()
    defn = resolve_definition(feature, graph)
    return {
        "feature": {
            "project": defn.project,
            "spec": defn.spec.model_dump(mode="json"),
            "version": graph.get_feature_version(defn.key),
            "type": defn.feature_class_path or "",
        },
        "metaxy": {"version": __version__, "plugins": MetaxyConfig.current_or_default().plugins},
    }


def feature_metadata(feature: Any) -> dict[str, str]:
    """Short, typed entries naming a feature on asset definitions and events.

    ``metaxy/feature`` (the slash key), ``metaxy/feature_version`` (changes with the feature's
    fields and every upstream field it depends on), ``metaxy/code_version`` (the feature's own
    fields) and ``metaxy/project``.
    """
    graph = current_graph()
    defn = resolve_definition(feature, graph)
    return {
        DAGSTER_METAXY_FEATURE_METADATA_KEY: defn.key.to_string(),
        DAGSTER_METAXY_FEATURE_VERSION_METADATA_KEY: graph.get_feature_version(defn.key),
        DAGSTER_METAXY_CODE_VERSION_METADATA_KEY: defn.spec.code_version,
        DAGSTER_METAXY_PROJECT_METADATA_KEY: defn.project,
    }


def build_feature_event_tags(feature: Any) -> dict[str, str]:
    """Tags for events about ``feature``: table name, feature version, feature code version."""
    graph = current_graph()
    defn = resolve_definition(feature, graph)
    return {
        DAGSTER_METAXY_FEATURE_METADATA_KEY: defn.key.table_name[:63],
        DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY: graph.get_feature_version(defn.key)[:63],
        DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY: defn.spec.code_version[:63],
    }
