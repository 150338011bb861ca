"""Predict what a run will recompute, for every feature, before anything runs.

``resolve_update`` on a downstream feature compares against the *stored* upstream metadata, which
only changes once the upstream asset has run. To show the whole cascade up front, the prediction
copies the store's metadata into an in-memory store and replays the run there without doing any
work: in topological order it resolves each feature, writes the new + stale rows exactly as
resolved (their data version is their provenance, as in the real assets) and soft-deletes the
orphaned samples. The real store is only read.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import polars as pl

from metaxy.metadata_store import InMemoryMetadataStore, MetadataStore
from metaxy.models.feature_spec import FeatureSpec
from metaxy.models.graph import FeatureGraph
from metaxy.models.keys import FeatureKey
from metaxy.versioning.samples import count_samples, sample_columns

__all__ = ["Counts", "predict_increments", "sample_columns"]


class Counts(NamedTuple):
    """How many samples are new, stale and orphaned."""

    new: int
    stale: int
    orphaned: int

    @property
    def recomputed(self) -> int:
        return self.new + self.stale


def count(increment: Any, columns: list[str]) -> Counts:
    """Distinct samples in each frame of an increment."""

    return Counts(*(count_samples(getattr(increment, name), columns) for name in ("new", "stale", "orphaned")))


def predict_increments(
    store: MetadataStore, graph: FeatureGraph, samples: Mapping[FeatureKey, pl.DataFrame]
) -> dict[FeatureKey, Counts]:
    """Per feature of ``graph`` (upstream first), the samples a full run would find new, stale, orphaned.

    Args:
        store: the real store (read only; it must not be open in another mode elsewhere).
        graph: the feature graph of the coming run (may differ from the stored versions).
        samples: the root features' samples, as their assets will pass them to ``resolve_update``.

    Raises:
        NotImplementedError: a feature with expansion lineage has dependents (replaying it would
            need the child ids the asset invents).
    """
    scratch = InMemoryMetadataStore(hash_algorithm=store.hash_algorithm)
    predicted: dict[FeatureKey, Counts] = {}
    with graph.use(), warnings.catch_warnings(), scratch.open("w"):
        warnings.simplefilter("ignore")  # table creation / Polars notices of the throw-away copy
        with store:
            present = [key for key in graph.list_features() if store.has_feature(key)]
        if present:
            scratch.copy_metadata(store, present)
        for key in graph.topological_sort_features():
            spec = graph.get_feature_definition(key).spec
            increment = scratch.resolve_update(key, samples=samples.get(key))
            units = sample_columns(spec)
            predicted[key] = count(increment, units)
            if graph.get_downstream_features([key]):
                _replay(scratch, graph, key, spec, increment, units)
    return predicted


def _replay(
    scratch: MetadataStore, graph: FeatureGraph, key: FeatureKey, spec: FeatureSpec, increment: Any, units: list[str]
) -> None:
    if any(dep.lineage.is_expansion for dep in spec.deps):
        raise NotImplementedError(
            f"Cannot predict past '{key}': it has expansion lineage and downstream features. "
            "Hint: run its asset, then predict the rest."
        )
    declared = set(graph.get_feature_definition(key).columns)
    todo = pl.concat([increment.new.to_polars(), increment.stale.to_polars()], how="vertical")
    keep = [c for c in todo.columns if c in declared or c.startswith("metaxy_")]
    if any(dep.lineage.is_aggregation for dep in spec.deps):
        todo = todo.unique(units, keep="first")
    if len(todo):
        scratch.write(key, todo.select(keep))
    orphaned = increment.orphaned.to_polars().select(units).unique()
    if len(orphaned):
        if len(units) != 1:
            raise NotImplementedError(f"Cannot replay orphans of '{key}': samples keyed by several columns {units}.")
        scratch.delete(key, pl.col(units[0]).is_in(orphaned[units[0]].to_list()))
