"""Asset checks derived from Metaxy: is a feature up to date with its upstream? (G19)

``asset_checks=mxd.build_metaxy_asset_checks(assets)`` adds, for every Metaxy asset whose
feature has upstream features, two checks evaluated from one ``resolve_update``:

* ``metaxy_up_to_date`` — no **missing** (new) or **stale** samples: every upstream sample has a
  row whose provenance matches the current upstream and feature version;
* ``metaxy_no_orphans`` — no stored sample whose upstream sample is gone;
* ``metaxy_failures`` — at most ``max_failed`` samples quarantined by a recorded failure
  (``increment.failed``, see :func:`metaxy.ext.dagster.record_failures`); ``max_failed=None``
  leaves this check out.

Each check reports the counts (``metaxy/new``, ``metaxy/stale``, ``metaxy/orphaned``: samples,
as ``mx metadata status`` counts them — parents for 1:N expansion, groups for N:1 aggregation —
and ``dagster/row_count``) and a few distinct example ids as metadata. Both checks fail with
"upstream not materialized at its current feature version" while an upstream has no rows at its
current version (after a code change upstream). The checks are subsettable: each can run alone.
Root features (no upstream) get no checks: nothing can make them stale. Checks describe the
whole feature: assets that each own a ``metaxy/partition`` slice of one feature all report the feature's counts.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotations at runtime.

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dagster as dg

from metaxy.metadata_store.base import MetadataStore
from metaxy.models.graph import current_graph
from metaxy.models.keys import FeatureKey
from metaxy.versioning.samples import count_samples, example_samples, sample_columns

from ._features import feature_key_from_metadata
from ._runtime import compute_row_count
from .errors import MetaxyDagsterError

__all__ = [
    "METAXY_FAILURES_CHECK",
    "METAXY_NO_ORPHANS_CHECK",
    "METAXY_UP_TO_DATE_CHECK",
    "build_metaxy_asset_checks",
    "build_metaxy_check_specs",
    "metaxy_check_results",
]

METAXY_UP_TO_DATE_CHECK = "metaxy_up_to_date"
METAXY_NO_ORPHANS_CHECK = "metaxy_no_orphans"
METAXY_FAILURES_CHECK = "metaxy_failures"
_EXAMPLES = 5


def build_metaxy_check_specs(
    asset_key: Any, *, blocking: bool = False, max_failed: int | None = None
) -> list[dg.AssetCheckSpec]:
    """The Metaxy check specs of one asset (for ``check_specs=`` of an asset that yields
    :func:`metaxy_check_results` itself); with ``max_failed``, also ``metaxy_failures``."""
    key = dg.AssetKey.from_coercible(asset_key)
    failures = (
        [
            dg.AssetCheckSpec(
                METAXY_FAILURES_CHECK,
                asset=key,
                description=f"At most {max_failed} samples quarantined by a recorded failure (mx errors list).",
            )
        ]
        if max_failed is not None
        else []
    )
    return [
        dg.AssetCheckSpec(
            METAXY_UP_TO_DATE_CHECK,
            asset=key,
            blocking=blocking,
            description="No missing or stale samples: every upstream sample has an up-to-date row.",
        ),
        dg.AssetCheckSpec(
            METAXY_NO_ORPHANS_CHECK,
            asset=key,
            description="No orphaned samples: every stored sample still has its upstream samples.",
        ),
        *failures,
    ]


def metaxy_check_results(
    store: MetadataStore,
    feature: Any,
    asset_key: Any,
    *,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
    check_names: Iterable[str] | None = None,
    max_failed: int = 0,
) -> list[dg.AssetCheckResult]:
    """Evaluate the Metaxy checks of ``feature`` for ``asset_key`` (opens ``store`` if needed).

    Counts are **samples**, as ``mx metadata status`` counts them: rows for identity lineage,
    parents for 1:N expansion, groups for N:1 aggregation (:mod:`metaxy.versioning.samples`).
    When an upstream feature has no rows at its *current* feature version (its code changed and
    it was not re-materialised yet), nothing can be compared: both checks fail and say so, rather
    than reporting every stored sample as orphaned or passing on zero expected samples.

    Args:
        store: the metadata store.
        feature: feature class, key or key string.
        asset_key: the asset the results are about.
        severity: the severity of failed results.
        check_names: evaluate only these checks (default: up-to-date and no-orphans; name
            ``metaxy_failures`` to evaluate it too).
        max_failed: ``metaxy_failures`` passes with at most this many failed samples.

    Raises:
        MetaxyDagsterError: the feature is a root feature (no upstream to compare with).
    """
    graph = current_graph()
    defn = graph.get_feature_definition(feature)
    if not defn.spec.deps:
        raise MetaxyDagsterError(
            f"'{defn.key}' is a root feature: it has no upstream, so it can be neither stale nor orphaned. "
            "Hint: build checks only for features with deps (build_metaxy_asset_checks skips root features)."
        )
    key = dg.AssetKey.from_coercible(asset_key)
    wanted = set(check_names) if check_names is not None else {METAXY_UP_TO_DATE_CHECK, METAXY_NO_ORPHANS_CHECK}
    with store:
        behind = [up for up in (d.feature for d in defn.spec.deps) if not _has_current_rows(store, up)]
        if behind:
            results = _upstream_behind(defn.key, behind, key, severity, wanted)
            return [r for r in results if r.check_name in wanted]
        increment = store.resolve_update(defn.key)
        rows = _stored_rows(store, defn.key)
    columns = sample_columns(defn.spec)
    frames = {
        "new": increment.new,
        "stale": increment.stale,
        "orphaned": increment.orphaned,
        "failed": increment.failed,
    }
    counts = {name: count_samples(frame, columns) for name, frame in frames.items()}
    base: dict[str, Any] = {f"metaxy/{name}": n for name, n in counts.items()}
    base["dagster/row_count"] = rows
    base["metaxy/feature_version"] = graph.get_feature_version(defn.key)

    def examples(name: str) -> str:
        return ", ".join(example_samples(frames[name], columns, _EXAMPLES))

    up_to_date = counts["new"] == 0 and counts["stale"] == 0
    no_orphans = counts["orphaned"] == 0
    results = [
        dg.AssetCheckResult(
            asset_key=key,
            check_name=METAXY_UP_TO_DATE_CHECK,
            passed=up_to_date,
            severity=severity,
            metadata={**base, "metaxy/example_new": examples("new"), "metaxy/example_stale": examples("stale")},
            description=None if up_to_date else f"{counts['new']} missing and {counts['stale']} stale samples.",
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name=METAXY_NO_ORPHANS_CHECK,
            passed=no_orphans,
            severity=severity,
            metadata={**base, "metaxy/example_orphaned": examples("orphaned")},
            description=None if no_orphans else f"{counts['orphaned']} orphaned samples.",
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name=METAXY_FAILURES_CHECK,
            passed=counts["failed"] <= max_failed,
            severity=severity,
            metadata={**base, "metaxy/max_failed": max_failed, "metaxy/example_failed": examples("failed")},
            description=None
            if counts["failed"] <= max_failed
            else f"{counts['failed']} failed samples (more than {max_failed}). Hint: `mx errors list` shows why; "
            "`mx errors reset` retries them.",
        ),
    ]
    return [r for r in results if r.check_name in wanted]


def _has_current_rows(store: MetadataStore, key: FeatureKey) -> bool:
    """Whether ``key`` has at least one row at its current feature version (in the store or a fallback)."""
    from metaxy.errors import FeatureNotFoundError

    try:
        return compute_row_count(store.read(key).head(1)) > 0
    except FeatureNotFoundError:
        return False


def _upstream_behind(
    feature: FeatureKey,
    behind: Sequence[FeatureKey],
    asset_key: dg.AssetKey,
    severity: dg.AssetCheckSeverity,
    wanted: Iterable[str] = (),
) -> list[dg.AssetCheckResult]:
    graph = current_graph()
    names = ", ".join(f"'{up}' (feature version {graph.get_feature_version(up)})" for up in behind)
    description = (
        f"Upstream not materialized at its current feature version: {names}. Nothing to compare '{feature}' "
        "with yet. Hint: materialize the upstream asset(s) first."
    )
    metadata = {
        "metaxy/upstream_not_materialized": ", ".join(up.to_string() for up in behind),
        "metaxy/feature_version": graph.get_feature_version(feature),
    }
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=name,
            passed=False,
            severity=severity,
            metadata=metadata,
            description=description,
        )
        for name in (METAXY_UP_TO_DATE_CHECK, METAXY_NO_ORPHANS_CHECK, METAXY_FAILURES_CHECK)
        if name != METAXY_FAILURES_CHECK or name in wanted
    ]


def _stored_rows(store: MetadataStore, key: FeatureKey) -> int:
    from metaxy.errors import FeatureNotFoundError

    try:
        return compute_row_count(store.read(key))
    except FeatureNotFoundError:
        return 0


def _metaxy_assets(assets: Iterable[Any]) -> Iterator[tuple[dg.AssetKey, FeatureKey]]:
    for item in assets:
        if isinstance(item, dg.AssetsDefinition):
            specs: Iterable[dg.AssetSpec] = item.specs
        elif isinstance(item, dg.AssetSpec):
            specs = [item]
        elif isinstance(item, dg.SourceAsset):
            continue
        else:
            raise TypeError(f"Expected AssetsDefinition or AssetSpec items, got {type(item).__name__}.")
        for spec in specs:
            feature = feature_key_from_metadata(spec.metadata)
            if feature is not None:
                yield spec.key, feature


def build_metaxy_asset_checks(
    assets: Iterable[Any],
    *,
    store_resource_key: str = "store",
    blocking: bool = False,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
    max_failed: int | None = 0,
) -> list[dg.AssetChecksDefinition]:
    """Metaxy checks for every Metaxy asset in ``assets`` whose feature has upstream features.

    Args:
        assets: asset definitions or specs (others than Metaxy assets are ignored).
        store_resource_key: the resource holding the metadata store.
        blocking: make ``metaxy_up_to_date`` blocking (downstream assets wait for it to pass).
        severity: severity of a failed check.
        max_failed: ``metaxy_failures`` fails when more samples than this are quarantined by a
            recorded failure (default 0: any failed sample); None leaves the check out.

    Returns:
        One ``AssetChecksDefinition`` per asset (its checks, one ``resolve_update``).

    Example:
        >>> defs = dg.Definitions(assets=assets, asset_checks=mxd.build_metaxy_asset_checks(assets))  # doctest: +SKIP
    """
    out = []
    graph = current_graph()
    for asset_key, feature in _metaxy_assets(assets):
        if not graph.get_feature_definition(feature).spec.deps:
            continue
        out.append(_checks_for(asset_key, feature, store_resource_key, blocking, severity, max_failed))
    return out


def _checks_for(
    asset_key: dg.AssetKey,
    feature: FeatureKey,
    store_resource_key: str,
    blocking: bool,
    severity: dg.AssetCheckSeverity,
    max_failed: int | None,
) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"metaxy_checks_{asset_key.to_python_identifier()}",
        specs=build_metaxy_check_specs(asset_key, blocking=blocking, max_failed=max_failed),
        required_resource_keys={store_resource_key},
        can_subset=True,  # "Execute" on one check in the UI runs just that check
    )
    def _evaluate(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        store = getattr(context.resources, store_resource_key)
        names = [k.name for k in context.selected_asset_check_keys]
        yield from metaxy_check_results(
            store, feature, asset_key, severity=severity, check_names=names, max_failed=max_failed or 0
        )

    return _evaluate
