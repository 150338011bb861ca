"""Observing Metaxy features from Dagster (spec §10-§11; gaps G7, G8, G9 fixed).

* :func:`observable_metaxy_asset` — an observable asset for a feature whose rows are written
  outside Dagster. Built on ``multi_observable_source_asset`` with a metaxified spec, so it keeps
  ``key=``, the feature's deps, code version, kinds, schema and lineage; the observation filters
  to the run's partitions and carries a content data version.
* :func:`build_metaxy_observation_job` / :func:`build_metaxy_multi_observation_job` — jobs that
  observe materialisable Metaxy assets without running them; every observation carries a data
  version (as the ``dagster/data_version`` tag) and slice-consistent row counts.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotations at runtime.

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from metaxy.models.graph import current_graph
from metaxy.models.keys import coerce_to_feature_key

from ._features import feature_key_from_metadata, slice_from_metadata
from ._runtime import feature_frames
from .constants import DAGSTER_METAXY_ERROR_METADATA_KEY, DAGSTER_METAXY_FEATURE_METADATA_KEY
from .errors import MetaxyDagsterError
from .metaxify import metaxify
from .utils import _partition_selection, _Target, generate_observe_results

__all__ = ["build_metaxy_multi_observation_job", "build_metaxy_observation_job", "observable_metaxy_asset"]

ObserveFn = Callable[[Any, Any, Any], Mapping[str, Any] | None]


def observable_metaxy_asset(
    feature: Any,
    *,
    store_resource_key: str = "store",
    key: Any = None,
    key_prefix: Any = None,
    metadata: Mapping[str, Any] | None = None,
    group_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    name: str | None = None,
    inject_metaxy_kind: bool = True,
    inject_code_version: bool = True,
    set_description: bool = True,
    inject_column_schema: bool = True,
    inject_column_lineage: bool = True,
) -> Callable[[ObserveFn], dg.AssetsDefinition]:
    """Decorate ``fn(context, store, lazy_frame) -> dict | None`` into an observable feature asset.

    The observation reads the feature's current rows (the run's partitions when
    ``partitions_def`` is given and the asset metadata names ``partition_by``; the asset's
    ``metaxy/partition`` slice), calls ``fn`` while the store is open, and reports
    ``dagster/row_count`` (plus ``dagster/partition_row_count``), ``fn``'s metadata, event tags and
    a content-derived data version.

    Args:
        feature: the feature (class, key or key string).
        store_resource_key: the resource holding the metadata store.
        key: the asset key (default: the feature's asset key); ``key_prefix`` prefixes it.
        metadata: asset metadata (e.g. ``partition_by``, ``metaxy/partition``).
        group_name, tags, description, partitions_def: as for ``dg.AssetSpec``.
        name: the op name (default: ``observe_<asset key>``).
        inject_metaxy_kind, inject_code_version, set_description, inject_column_schema,
            inject_column_lineage: as for :func:`metaxify`.

    Returns:
        A decorator returning an ``AssetsDefinition`` whose execution type is observation.

    Raises:
        FeatureNotInGraphError: the feature is not in the active graph.
        MetaxyDagsterError: both ``key`` and ``key_prefix`` are given.
    """
    enrich = metaxify(
        feature=feature,
        key=key,
        key_prefix=key_prefix,
        inject_metaxy_kind=inject_metaxy_kind,
        inject_code_version=inject_code_version,
        set_description=set_description,
        inject_column_schema=inject_column_schema,
        inject_column_lineage=inject_column_lineage,
    )

    def decorator(fn: ObserveFn) -> dg.AssetsDefinition:
        feature_key = coerce_to_feature_key(feature)
        base = dg.AssetSpec(
            key=dg.AssetKey(list(feature_key.parts)),
            metadata={**(metadata or {}), DAGSTER_METAXY_FEATURE_METADATA_KEY: feature_key.to_string()},
            group_name=group_name,
            tags=dict(tags or {}),
            description=description,
        )
        spec: dg.AssetSpec = enrich(base)
        current_graph().get_feature_definition(feature_key)  # unknown features fail at definition time

        with warnings.catch_warnings():  # beta in Dagster 1.13; the supported way to observe with deps (G7)
            warnings.simplefilter("ignore", dg.BetaWarning)
            decorate = dg.multi_observable_source_asset(
                specs=[spec],
                name=name or f"observe_{spec.key.to_python_identifier()}",
                partitions_def=partitions_def,
                required_resource_keys={store_resource_key},
            )

        def _observe(context: dg.AssetExecutionContext) -> dg.ObserveResult:
            store = getattr(context.resources, store_resource_key)
            (result,) = generate_observe_results(context, store)  # counts, data version, tags; 0 rows if missing
            metadata = dict(result.metadata or {})
            if DAGSTER_METAXY_ERROR_METADATA_KEY not in metadata:
                target = _Target(spec, feature_key, partitions_def)
                with store:
                    _, frame, _ = feature_frames(
                        store,
                        feature_key,
                        partitions=_partition_selection(context.op_execution_context, target),
                        metaxy_partition=slice_from_metadata(spec.metadata),
                    )
                    try:
                        metadata.update(fn(context, store, frame) or {})
                    except Exception as exc:
                        exc.add_note(f"(in the observe function of Metaxy feature '{feature_key}')")
                        raise
            return dg.ObserveResult(
                asset_key=spec.key, metadata=metadata, data_version=result.data_version, tags=result.tags
            )

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            return decorate(_observe)

    return decorator


# --- observation jobs ------------------------------------------------------------------------


def _metaxy_specs(asset: Any) -> list[tuple[dg.AssetSpec, dg.PartitionsDefinition | None]]:
    if isinstance(asset, dg.AssetSpec):
        pairs = [(asset, asset.partitions_def)]
    elif isinstance(asset, dg.AssetsDefinition):
        pairs = [(spec, asset.partitions_def) for spec in asset.specs]
    else:
        raise TypeError(
            f"Expected an AssetSpec or AssetsDefinition, got {type(asset).__name__}. "
            "Hint: pass the metaxified asset (or its spec)."
        )
    return [(spec, pd) for spec, pd in pairs if feature_key_from_metadata(spec.metadata) is not None]


def _mapping_key(user_key: str) -> str:
    return dg.AssetKey.from_user_string(user_key).to_python_identifier()


def _observe_op(op_name: str, store_resource_key: str, specs: Sequence[dg.AssetSpec], mapped: bool) -> dg.OpDefinition:
    """The op logging observations of ``specs``; ``mapped``: of the one spec named by the mapping key."""
    by_mapping_key = {_mapping_key(spec.key.to_user_string()): spec for spec in specs}

    @dg.op(
        name=op_name,
        ins={"start": dg.In(dg.Nothing)} if mapped else None,
        out={},
        required_resource_keys={store_resource_key},
    )
    def observe(context: dg.OpExecutionContext) -> Any:
        chosen = [by_mapping_key[context.get_mapping_key() or ""]] if mapped else list(specs)
        store = getattr(context.resources, store_resource_key)
        yield from generate_observe_results(context, store, specs=chosen)

    return observe


def build_metaxy_observation_job(
    asset: dg.AssetSpec | dg.AssetsDefinition,
    *,
    store_resource_key: str = "store",
    tags: Mapping[str, str] | None = None,
) -> list[dg.JobDefinition]:
    """One job per Metaxy spec of ``asset`` that observes it without running it.

    Jobs are named ``observe_<asset key as identifier>`` (unique per asset, also when two assets
    share a feature, G9), take the asset's partitions definition (also an ``AssetSpec``'s), and
    log an ``AssetObservation`` with row counts, event tags and the data version (G8).

    Raises:
        TypeError: ``asset`` is neither an ``AssetSpec`` nor an ``AssetsDefinition``.
        MetaxyDagsterError: no spec of ``asset`` has ``metaxy/feature`` metadata.
    """
    pairs = _metaxy_specs(asset)
    if not pairs:
        raise MetaxyDagsterError(
            "The asset has no specs with 'metaxy/feature' metadata. Hint: metaxify it, or add "
            "metadata={'metaxy/feature': 'my/feature'}."
        )
    jobs = []
    for spec, partitions_def in pairs:
        ident = spec.key.to_python_identifier()
        feature = feature_key_from_metadata(spec.metadata)
        assert feature is not None
        op_def = _observe_op(f"observe_{ident}", store_resource_key, [spec], mapped=False)
        graph = dg.GraphDefinition(name=f"observe_{ident}", node_defs=[op_def])
        jobs.append(
            graph.to_job(
                name=f"observe_{ident}",
                partitions_def=partitions_def,
                tags={**(tags or {}), DAGSTER_METAXY_FEATURE_METADATA_KEY: feature.to_string()},
                description=f"Observe Metaxy feature {feature} (Dagster asset: `{spec.key.to_user_string()}`)",
                metadata={
                    DAGSTER_METAXY_FEATURE_METADATA_KEY: feature.to_string(),
                    "dagster/asset": dg.MetadataValue.asset(spec.key),
                },
            )
        )
    return jobs


def build_metaxy_multi_observation_job(
    name: str,
    *,
    asset_selection: Any = None,
    defs: dg.Definitions | None = None,
    assets: Sequence[Any] | None = None,
    store_resource_key: str = "store",
    tags: Mapping[str, str] | None = None,
    **job_kwargs: Any,
) -> dg.JobDefinition:
    """One job observing many Metaxy assets: a fan-out op, one dynamic branch per asset.

    Give either ``asset_selection`` + ``defs`` or ``assets`` (specs / definitions; source assets
    are skipped). Run config ``ops: {<name>_fanout: {config: {asset_keys: [...]}}}`` observes a
    subset (default: all; unknown keys fail the run).

    Raises:
        MetaxyDagsterError: the arguments conflict, nothing to observe, or the assets have
            different partitions definitions.
        TypeError: an item of ``assets`` is not a spec or definition.
    """
    if assets is not None and (asset_selection is not None or defs is not None):
        raise MetaxyDagsterError("Cannot provide both 'assets' and 'asset_selection'/'defs'.")
    if assets is None and asset_selection is None and defs is None:
        raise MetaxyDagsterError("Must provide either 'assets' or 'asset_selection' with 'defs'.")
    if asset_selection is not None and defs is None:
        raise MetaxyDagsterError("'asset_selection' requires 'defs'.")
    if defs is not None and asset_selection is None:
        raise MetaxyDagsterError("'defs' requires 'asset_selection'.")
    pairs: list[tuple[dg.AssetSpec, dg.PartitionsDefinition | None]] = []
    if assets is not None:
        for item in assets:
            if isinstance(item, dg.SourceAsset):
                continue
            pairs += _metaxy_specs(item)
    else:
        assert defs is not None
        selection = dg.AssetSelection.from_coercible(asset_selection)
        graph = defs.resolve_asset_graph()
        selected = selection.resolve(graph)
        for assets_def in graph.assets_defs:
            pairs += [(s, pd) for s, pd in _metaxy_specs(assets_def) if s.key in selected]
    if not pairs:
        raise MetaxyDagsterError("No assets have specs with 'metaxy/feature' metadata. Hint: select metaxified assets.")
    partition_defs = {pd for _, pd in pairs}
    if len(partition_defs) > 1:
        raise MetaxyDagsterError(
            "All observed assets must have the same partitions_def (found "
            f"{len(partition_defs)} different ones). Hint: build one job per partitions definition."
        )
    specs = list({spec.key: spec for spec, _ in pairs}.values())  # an asset listed twice is observed once
    by_mapping_key: dict[str, dg.AssetSpec] = {}
    for spec in specs:
        other = by_mapping_key.setdefault(_mapping_key(spec.key.to_user_string()), spec)
        if other is not spec:
            raise MetaxyDagsterError(
                f"Assets '{other.key.to_user_string()}' and '{spec.key.to_user_string()}' map to the same dynamic "
                f"output name '{_mapping_key(spec.key.to_user_string())}'. Hint: observe them in separate jobs."
            )
    all_keys = [spec.key.to_user_string() for spec in specs]

    @dg.op(
        name=f"{name}_fanout",
        out=dg.DynamicOut(dg.Nothing),  # the mapping key names the asset: no IO manager involved
        config_schema={"asset_keys": dg.Field([str], is_required=False, default_value=all_keys)},
    )
    def fanout(context: dg.OpExecutionContext) -> Any:
        wanted = list(context.op_config["asset_keys"])
        unknown = sorted(set(wanted) - set(all_keys))
        if unknown:
            raise MetaxyDagsterError(f"Unknown asset key(s) {unknown}; this job observes {', '.join(all_keys)}.")
        for key in wanted:
            yield dg.DynamicOutput(None, mapping_key=_mapping_key(key))

    observe = _observe_op(f"{name}_observe", store_resource_key, specs, mapped=True)

    @dg.graph(name=name)
    def observe_graph() -> None:
        fanout().map(lambda started: observe(start=started))

    features = []
    for spec in specs:
        feature = feature_key_from_metadata(spec.metadata)
        assert feature is not None
        features.append(feature.to_string())
    lines = [f"- `{spec.key.to_user_string()}` → `{f}`" for spec, f in zip(specs, features, strict=True)]
    metadata: dict[str, Any] = {"metaxy/features": features}
    metadata.update({f"metaxy/asset/{spec.key.to_user_string()}": dg.MetadataValue.asset(spec.key) for spec in specs})
    return observe_graph.to_job(
        name=name,
        partitions_def=next(iter(partition_defs)),
        tags=dict(tags or {}),
        description=f"Observe {len(specs)} Metaxy assets:\n" + "\n".join(lines),
        metadata={**metadata, **job_kwargs.pop("metadata", {})},
        **job_kwargs,
    )
