"""Predict what a run will recompute, for every feature, before anything runs.

The prediction itself is :func:`metaxy.inspect.plan_run` (also behind ``mx plan``); this module
keeps the demo's shape of it: a map of feature key to :class:`Counts` for the demo's graph and
root samples.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from metaxy.inspect.plan import Counts, plan_run, sample_columns
from metaxy.metadata_store import MetadataStore
from metaxy.models.graph import FeatureGraph
from metaxy.models.keys import FeatureKey

__all__ = ["Counts", "predict_increments", "sample_columns", "upper_bounds"]


def predict_increments(
    store: MetadataStore, graph: FeatureGraph, samples: Mapping[FeatureKey, pl.DataFrame]
) -> dict[FeatureKey, Counts]:
    """Per feature of ``graph`` (upstream first), the samples a full run would find new, stale, orphaned.

    Args:
        store: the real store (read only; it must not be open in another mode elsewhere).
        graph: the feature graph of the coming run (may differ from the stored versions).
        samples: the root features' samples, as their assets will pass them to ``resolve_update``.

    Raises:
        NotImplementedError: a feature could not be predicted (downstream of a changing expansion
            feature, or an upstream without metadata).
    """
    return predict_with_bounds(store, graph, samples)[0]


def predict_with_bounds(
    store: MetadataStore, graph: FeatureGraph, samples: Mapping[FeatureKey, pl.DataFrame]
) -> tuple[dict[FeatureKey, Counts], set[str]]:
    """:func:`predict_increments`, and the features whose counts are upper bounds (downstream of a
    recomputed feature that derives its data version from content: early cutoff)."""
    plan = plan_run(store, graph, samples=samples)
    out: dict[FeatureKey, Counts] = {}
    bounds: set[str] = set()
    for forecast in plan.features:
        if forecast.predicted is None:
            raise NotImplementedError(f"Cannot predict '{forecast.feature}': {forecast.note}")
        out[FeatureKey(forecast.feature)] = forecast.predicted
        if forecast.upper_bound:
            bounds.add(forecast.feature)
    return out, bounds


def upper_bounds(planned: Counts, actual: Counts) -> bool:
    """Whether ``actual`` stays within a bounded prediction: no more new or stale samples, and
    exactly the predicted orphans (orphans depend on sample ids, not on content)."""
    return actual.new <= planned.new and actual.stale <= planned.stale and actual.orphaned == planned.orphaned
