"""Dagster events from Metaxy: materialize / observe results and graph-op outputs (spec §6-§9).

* :func:`generate_materialize_results` / :func:`generate_observe_results` describe the features
  behind the assets a step computes — only the run's **selected** assets (G2), upstream first,
  with row counts, the store, a preview, ``metaxy/materialized_in_run`` (distinct samples, within
  the partition and slice, G14) and a content-derived data version (G13). In an ``@asset`` /
  ``@multi_asset`` (and in an op of a graph-backed asset) they yield ``MaterializeResult`` /
  ``ObserveResult``; in a plain ``@op`` of a job they yield ``AssetMaterialization`` /
  ``AssetObservation`` events carrying the data version as tags (G3).
* :func:`generate_outputs` is for ops inside graph-backed assets (G1): it yields exactly the op's
  selected outputs, describing those that are Metaxy assets.

Metadata is built once (G4): results carry no ``value`` unless one is given, so no IO manager is
called for nothing; a value bound for ``MetaxyIOManager`` is described by the IO manager after it
wrote it, everything else is described here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg
from dagster_shared.check import CheckError

from metaxy.errors import FeatureNotFoundError
from metaxy.metadata_store.base import MetadataStore
from metaxy.models.graph import current_graph
from metaxy.models.keys import FeatureKey

from ._features import (
    build_feature_event_tags,
    build_feature_info_metadata,
    feature_key_from_metadata,
    feature_metadata,
)
from ._features import slice_from_metadata as _slice_of
from ._partitions import partition_by_of, partition_keys_of
from ._runtime import (
    EMPTY_DATA_VERSION,
    FeatureStats,
    PartitionSelection,
    build_runtime_feature_metadata,
    compute_feature_stats,
    compute_row_count,
    compute_stats_from_lazy_frame,
)
from .constants import (
    DAGSTER_METAXY_ERROR_METADATA_KEY,
)
from .errors import MetaxyDagsterError

__all__ = [
    "DATA_VERSION_IS_USER_PROVIDED_TAG",
    "DATA_VERSION_TAG",
    "FeatureStats",
    "build_feature_event_tags",
    "build_feature_info_metadata",
    "compute_feature_stats",
    "compute_row_count",
    "compute_stats_from_lazy_frame",
    "generate_materialize_results",
    "generate_observe_results",
    "generate_outputs",
]

DATA_VERSION_TAG = "dagster/data_version"
"""The event tag Dagster reads a data version from (``AssetObservation`` has no argument for it)."""
DATA_VERSION_IS_USER_PROVIDED_TAG = "dagster/data_version_is_user_provided"

Kind = Literal["materialize", "observe"]


@dataclass(frozen=True)
class _Target:
    """One Metaxy asset a step reports on."""

    spec: dg.AssetSpec
    feature: FeatureKey
    partitions_def: dg.PartitionsDefinition | None


# --- public generators -----------------------------------------------------------------------


def generate_materialize_results(
    context: Any,
    store: Any,
    specs: Sequence[dg.AssetSpec] | None = None,
    *,
    values: Mapping[Any, Any] | None = None,
    check_results: Sequence[dg.AssetCheckResult] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Materialization results for the Metaxy assets this step computes, upstream first.

    Use after the asset body wrote its features: ``yield from generate_materialize_results(context, store)``.

    Args:
        context: an ``AssetExecutionContext``, or an ``OpExecutionContext`` (op of a graph-backed
            asset, or a plain op of a job — then ``specs`` are required).
        store: the metadata store (or the store resource). Opened here if it is not open.
        specs: the asset specs to report (default: the asset's specs). Specs without
            ``metaxy/feature`` metadata are ignored; in an asset, unselected specs are skipped.
        values: output values by asset key (``AssetKey``, user string) or feature key; passed as
            ``MaterializeResult(value=...)`` — only for the keys given.
        check_results: ``AssetCheckResult``s, routed to their ``asset_key`` (may be omitted when
            one asset is reported).
        tags: extra event tags.

    Yields:
        ``MaterializeResult`` in an asset, ``AssetMaterialization`` in a plain op.

    Raises:
        MetaxyDagsterError: no specs in a plain op, a value or check result for an asset that
            is not reported, or a partition key that does not fit the partition column.
        MetaxyError: reading the store failed (errors are not turned into empty metadata, G12).
    """
    yield from _generate(context, store, specs, "materialize", values, check_results, tags)


def generate_observe_results(
    context: Any,
    store: Any,
    specs: Sequence[dg.AssetSpec] | None = None,
    *,
    check_results: Sequence[dg.AssetCheckResult] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Observation results for Metaxy assets (e.g. in ``@multi_observable_source_asset``), upstream first.

    Same arguments as :func:`generate_materialize_results` (without ``values``); yields
    ``ObserveResult`` in an asset, ``AssetObservation`` (data version as tags) in a plain op.
    """
    yield from _generate(context, store, specs, "observe", None, check_results, tags)


def generate_outputs(
    context: Any,
    store: Any,
    values: Mapping[str, Any] | None = None,
    *,
    tags: Mapping[str, str] | None = None,
) -> Iterator[dg.Output[Any]]:
    """The outputs of an op inside a graph-backed asset, for exactly its selected outputs (G1).

    ``yield from generate_outputs(context, store, {"bar_1": df1, "bar_2": df2})`` yields one
    ``Output`` per name in ``context.selected_output_names`` (so subset runs of
    ``can_subset=True`` graphs work, including Dagster 1.13 restricting upstream ops to the
    outputs the subset needs). An output that is a Metaxy asset without a value (the op wrote the
    feature itself) carries the asset's row counts, metadata and content data version; with a
    frame value, ``MetaxyIOManager`` writes and describes it. Other outputs pass through.

    Args:
        context: the op's ``OpExecutionContext``.
        store: the metadata store (or resource), used for Metaxy outputs without a value.
        values: values by op output name (missing: None).
        tags: extra event tags for Metaxy outputs.

    Raises:
        MetaxyDagsterError: not inside an op, or ``values`` names an output the op does not have.
    """
    op_ctx = _op_context(context)
    names = [out.name for out in op_ctx.op_def.output_defs]
    unknown = sorted(set(values or {}) - set(names))
    if unknown:
        raise MetaxyDagsterError(
            f"generate_outputs: op '{op_ctx.op_def.name}' has no output(s) {unknown} (outputs: {', '.join(names)})."
        )
    selected = set(op_ctx.selected_output_names)
    required = sorted(out.name for out in op_ctx.op_def.output_defs if out.is_required and out.name not in selected)
    if required:
        raise MetaxyDagsterError(
            f"Op '{op_ctx.op_def.name}': this run needs only outputs {sorted(selected)}, but {required} are required, "
            "and Dagster refuses both skipping and yielding them. Hint: metaxify the graph-backed asset (it makes "
            "the outputs of subsettable graphs optional) or declare them Out(is_required=False)."
        )
    keys = _op_output_keys(op_ctx)
    items = [(n, _output_target(op_ctx, keys.get(n)), (values or {}).get(n)) for n in names if n in selected]
    yield from _outputs(op_ctx, store, items, tags)


# --- implementation --------------------------------------------------------------------------


def _op_context(context: Any) -> dg.OpExecutionContext:
    if isinstance(context, dg.AssetExecutionContext):
        return context.op_execution_context
    if isinstance(context, dg.OpExecutionContext):
        return context
    raise MetaxyDagsterError(
        f"Expected a Dagster AssetExecutionContext or OpExecutionContext, got {type(context).__name__}. "
        "Hint: pass the `context` argument of your asset or op."
    )


def _has_assets_def(op_ctx: dg.OpExecutionContext) -> bool:
    """``op_ctx.has_assets_def``; False for a hand-built context (``dg.build_asset_context()``),
    which raises instead of answering."""
    try:
        return bool(op_ctx.has_assets_def)
    except dg.DagsterError:  # DagsterInvalidPropertyError (not exported)
        return False


def _run_id(op_ctx: dg.OpExecutionContext) -> str | None:
    """The run id, or None for a hand-built context outside a run."""
    try:
        return op_ctx.run_id
    except dg.DagsterError:  # DagsterInvalidPropertyError (not exported)
        return None


def _store(store: Any) -> MetadataStore:
    if isinstance(store, MetadataStore):
        return store
    get_store = getattr(store, "get_store", None)  # an unresolved MetaxyStoreFromConfigResource
    if callable(get_store):
        resolved: MetadataStore = get_store()
        return resolved
    raise MetaxyDagsterError(
        f"Expected a Metaxy MetadataStore (or MetaxyStoreFromConfigResource), got {type(store).__name__}."
    )


def _targets(
    op_ctx: dg.OpExecutionContext,
    specs: Sequence[dg.AssetSpec] | None,
    graph_outputs: Mapping[dg.AssetKey, str] | None,
) -> tuple[list[_Target], set[dg.AssetKey]]:
    """The Metaxy assets to report (upstream first), and those of the step the run did not select."""
    assets_def = op_ctx.assets_def if _has_assets_def(op_ctx) else None
    if specs is None:
        if assets_def is None:
            raise MetaxyDagsterError(
                "specs must be provided when using an OpExecutionContext outside an asset (a plain @op or a "
                "hand-built context). "
                "Hint: pass specs=[dg.AssetSpec('my/asset', metadata={'metaxy/feature': 'my/feature'})]."
            )
        specs = list(assets_def.specs)
    own, selected = _step_asset_keys(op_ctx, assets_def, graph_outputs)
    out, skipped = [], set()
    for spec in specs:
        feature = feature_key_from_metadata(spec.metadata)
        if feature is None or (own is not None and spec.key not in own):
            continue
        if selected is not None and spec.key not in selected:
            skipped.add(spec.key)
            continue
        current_graph().get_feature_definition(feature)  # unknown features fail here, naming the key
        partitions_def = assets_def.partitions_def if assets_def is not None else spec.partitions_def
        out.append(_Target(spec, feature, partitions_def))
    order = {k: i for i, k in enumerate(current_graph().topological_sort_features({t.feature for t in out}))}
    return sorted(out, key=lambda t: order[t.feature]), skipped  # stable: specs of one feature keep their order


def _step_asset_keys(
    op_ctx: dg.OpExecutionContext,
    assets_def: dg.AssetsDefinition | None,
    graph_outputs: Mapping[dg.AssetKey, str] | None,
) -> tuple[set[dg.AssetKey] | None, set[dg.AssetKey] | None]:
    """The assets this op produces and those of them the run selected (None, None: a plain op)."""
    if assets_def is None:
        return None, None
    own = set(graph_outputs) if graph_outputs is not None else {spec.key for spec in assets_def.specs}
    return own, set(op_ctx.selected_asset_keys) & own


def _op_output_keys(op_ctx: dg.OpExecutionContext) -> dict[str, dg.AssetKey]:
    """The asset key of each output of this op (intermediate outputs of a graph-backed asset have none)."""
    if not _has_assets_def(op_ctx):
        return {}
    out = {}
    for output in op_ctx.op_def.output_defs:
        try:
            out[output.name] = op_ctx.asset_key_for_output(output.name)
        except (dg.DagsterInvariantViolationError, CheckError):  # an intermediate output
            continue
    return out


def _graph_op_outputs(op_ctx: dg.OpExecutionContext) -> dict[dg.AssetKey, str] | None:
    """For an op inside a graph-backed asset: its output name per asset key; else None."""
    if not _has_assets_def(op_ctx) or not isinstance(op_ctx.assets_def.node_def, dg.GraphDefinition):
        return None
    return {key: name for name, key in _op_output_keys(op_ctx).items()}


def _output_target(op_ctx: dg.OpExecutionContext, key: dg.AssetKey | None) -> _Target | None:
    """The Metaxy asset behind an op output's asset key (None: not an asset, or not Metaxy's)."""
    if key is None:
        return None
    assets_def = op_ctx.assets_def
    spec = assets_def.specs_by_key[key]
    feature = feature_key_from_metadata(spec.metadata)
    return None if feature is None else _Target(spec, feature, assets_def.partitions_def)


def _event_tags(target: _Target, extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**build_feature_event_tags(target.feature), **(extra or {})}


def _partition_selection(op_ctx: dg.OpExecutionContext, target: _Target) -> PartitionSelection | None:
    """The Dagster partitions of the step that an event about ``target`` describes (None: all)."""
    partition_by = partition_by_of(target.spec.metadata)
    keys = partition_keys_of(op_ctx) if target.partitions_def is not None or partition_by else None
    return PartitionSelection(partition_by, target.partitions_def, keys) if keys is not None else None


def _describe(
    op_ctx: dg.OpExecutionContext, store: Any, target: _Target, kind: Kind
) -> tuple[dict[str, Any], FeatureStats]:
    """Event metadata and stats of one target; a feature never written reports 0 rows.

    Materializations count the samples the run wrote (``metaxy/materialized_in_run``);
    observations write nothing, so they do not.
    """
    resolved = _store(store)
    metadata = target.spec.metadata or {}
    partitions = _partition_selection(op_ctx, target)
    run_id = (resolved.materialization_id or _run_id(op_ctx)) if kind == "materialize" else None
    try:
        with resolved:
            return build_runtime_feature_metadata(
                target.feature, resolved, partitions=partitions, metaxy_partition=_slice_of(metadata), run_id=run_id
            )
    except FeatureNotFoundError as exc:
        # Not an empty table: no table at all. Reported as 0 rows *with* the reason (G12).
        op_ctx.log.warning(f"Feature '{target.feature}' has no metadata in {resolved.display()}: reporting 0 rows.")
        md = {
            **feature_metadata(target.feature),
            DAGSTER_METAXY_ERROR_METADATA_KEY: f"Feature not found: {exc}",
            "dagster/row_count": 0,
        }
        return md, FeatureStats(0, dg.DataVersion(EMPTY_DATA_VERSION))


def _route_checks(
    targets: Sequence[_Target], skipped: set[dg.AssetKey], check_results: Sequence[dg.AssetCheckResult] | None
) -> dict[dg.AssetKey, list[dg.AssetCheckResult]]:
    """Check results by reported asset; results for assets the run did not select are dropped."""
    routed: dict[dg.AssetKey, list[dg.AssetCheckResult]] = {}
    keys = [t.spec.key for t in targets]
    for result in check_results or ():
        key = result.asset_key
        if key is None:
            if len(keys) != 1:
                raise MetaxyDagsterError(
                    f"Check result '{result.check_name}' has no asset_key, but {len(keys)} assets are reported "
                    f"({', '.join(k.to_user_string() for k in keys)}). Hint: set AssetCheckResult(asset_key=...)."
                )
            key = keys[0]
        if key in skipped:
            continue
        if key not in keys:
            raise MetaxyDagsterError(
                f"Check result '{result.check_name}' is for asset '{key.to_user_string()}', which this step does not "
                f"produce (reported: {', '.join(k.to_user_string() for k in keys) or 'none'})."
            )
        routed.setdefault(key, []).append(result)
    return routed


def _route_values(
    targets: Sequence[_Target], skipped: set[dg.AssetKey], values: Mapping[Any, Any] | None
) -> dict[dg.AssetKey, Any]:
    """Values by reported asset; values for assets the run did not select are dropped."""
    routed: dict[dg.AssetKey, Any] = {}
    for given, value in (values or {}).items():
        if _as_asset_key(given) in skipped:
            continue
        matches = [t.spec.key for t in targets if _names(t, given)]
        if len(matches) != 1:
            reported = ", ".join(t.spec.key.to_user_string() for t in targets) or "none"
            why = "matches no" if not matches else "matches several"
            raise MetaxyDagsterError(f"values key {given!r} {why} reported asset (reported: {reported}).")
        routed[matches[0]] = value
    return routed


def _as_asset_key(given: Any) -> dg.AssetKey | None:
    if isinstance(given, dg.AssetKey):
        return given
    if isinstance(given, list | tuple):
        return dg.AssetKey([str(part) for part in given])
    if isinstance(given, str):
        return dg.AssetKey.from_user_string(given)
    return None


def _names(target: _Target, given: Any) -> bool:
    if isinstance(given, FeatureKey):
        return given == target.feature
    if isinstance(given, str) and given == target.feature.to_string():
        return True
    return _as_asset_key(given) == target.spec.key


def _is_metaxy_io_manager(op_ctx: dg.OpExecutionContext, output_name: str) -> bool:
    """Whether the op's output ``output_name`` is stored by a ``MetaxyIOManager``."""
    from .io_manager import MetaxyIOManager

    io_key = op_ctx.op_def.output_def_named(output_name).io_manager_key
    return isinstance(getattr(op_ctx.resources, io_key, None), MetaxyIOManager)


def _generate(
    context: Any,
    store: Any,
    specs: Sequence[dg.AssetSpec] | None,
    kind: Kind,
    values: Mapping[Any, Any] | None,
    check_results: Sequence[dg.AssetCheckResult] | None,
    tags: Mapping[str, str] | None,
) -> Iterator[Any]:
    op_ctx = _op_context(context)
    graph_outputs = _graph_op_outputs(op_ctx)
    targets, skipped = _targets(op_ctx, specs, graph_outputs)
    checks = _route_checks(targets, skipped, check_results)
    routed_values = _route_values(targets, skipped, values)
    # a hand-built ``dg.build_asset_context()`` (a directly invoked asset) has no assets_def: results still
    in_asset = _has_assets_def(op_ctx) or isinstance(context, dg.AssetExecutionContext)
    if (not in_asset or graph_outputs is not None) and checks:
        raise MetaxyDagsterError(
            "check_results need an @asset or @multi_asset: a plain @op or an op inside a graph-backed asset "
            "cannot attach them to results. Hint: yield the AssetCheckResult objects yourself."
        )
    if not in_asset and routed_values:
        raise MetaxyDagsterError("values need an asset context: a plain @op can only log events.")
    for target in targets:
        key = target.spec.key
        event_tags = _event_tags(target, tags)
        if graph_outputs is not None:  # results map to graph outputs, not to this op's outputs: yield Outputs
            yield from _outputs(op_ctx, store, [(graph_outputs[key], target, routed_values.get(key))], tags)
            continue
        output = op_ctx.assets_def.get_output_name_for_asset_key(key) if key in routed_values else None
        if output is not None and _is_metaxy_io_manager(op_ctx, output):
            # MetaxyIOManager writes the value, then describes the feature and sets the data version.
            yield dg.MaterializeResult(
                asset_key=key, value=routed_values[key], tags=event_tags, check_results=checks.get(key)
            )
            continue
        md, stats = _describe(op_ctx, store, target, kind)
        if in_asset:
            result = dg.MaterializeResult if kind == "materialize" else dg.ObserveResult
            extra: dict[str, Any] = {"value": routed_values[key]} if key in routed_values else {}
            yield result(
                asset_key=key,
                metadata=md,
                data_version=stats.data_version,
                tags=event_tags,
                check_results=checks.get(key),
                **extra,
            )
        else:
            partitions = partition_keys_of(op_ctx) if target.partitions_def is not None else None
            yield from _plain_op_events(kind, key, md, stats, event_tags, partitions)


def _outputs(
    op_ctx: dg.OpExecutionContext,
    store: Any,
    items: Sequence[tuple[str, _Target | None, Any]],
    tags: Mapping[str, str] | None,
) -> Iterator[dg.Output[Any]]:
    """``Output``s of ``(output name, Metaxy target or None, value)``; targets without a value are described."""
    for name, target, value in items:
        if target is None or (value is not None and _is_metaxy_io_manager(op_ctx, name)):
            # Not a Metaxy asset, or MetaxyIOManager writes the value and then describes it.
            yield dg.Output(value, output_name=name, tags=_event_tags(target, tags) if target else None)
            continue
        md, stats = _describe(op_ctx, store, target, "materialize")
        with warnings.catch_warnings():  # `Output(data_version=...)` is beta in Dagster 1.13
            warnings.simplefilter("ignore", dg.BetaWarning)
            output = dg.Output(
                value, output_name=name, metadata=md, data_version=stats.data_version, tags=_event_tags(target, tags)
            )
        yield output


def _plain_op_events(
    kind: Kind,
    key: dg.AssetKey,
    md: dict[str, Any],
    stats: FeatureStats,
    event_tags: dict[str, str],
    partitions: Sequence[str | None] | None,
) -> Iterator[dg.AssetMaterialization | dg.AssetObservation]:
    versioned = {
        **event_tags,
        DATA_VERSION_TAG: stats.data_version.value or EMPTY_DATA_VERSION,
        DATA_VERSION_IS_USER_PROVIDED_TAG: "true",
    }
    event = dg.AssetMaterialization if kind == "materialize" else dg.AssetObservation
    for partition in list(partitions or []) or [None]:
        yield event(asset_key=key, metadata=md, partition=partition, tags=versioned)
