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

__all__ = ["Counts", "predict_increments", "sample_columns"]


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
    plan = plan_run(store, graph, samples=samples)
    out: dict[FeatureKey, Counts] = {}
    for forecast in plan.features:
        if forecast.predicted is None:
            raise NotImplementedError(f"Cannot predict '{forecast.feature}': {forecast.note}")
        out[FeatureKey(forecast.feature)] = forecast.predicted
    return out
