"""Predict what the next run recomputes, for every feature, before anything runs.

``resolve_update`` on a downstream feature compares against the *stored* upstream metadata, which
only changes once the upstream has been recomputed. To show the whole cascade up front,
:func:`plan_run` copies the store's current metadata into an in-memory store and replays the run
there without doing any work: in topological order it resolves each feature, writes its new and
stale rows exactly as resolved (their data version is their provenance — a feature whose real
computation overrides data versions with content hashes may turn out to change less: its downstream
forecasts are marked ``upper_bound``) and soft-deletes its orphaned samples. The real store is only read.

Each feature gets two sets of counts: ``direct`` — what ``resolve_update`` says today (what
``mx metadata status`` shows) — and the predicted totals, which add the samples that become new
or stale once their upstream features have been recomputed (``cascaded``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from metaxy.errors import FeatureNotFoundError
from metaxy.models.feature_spec import FeatureSpec
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import FeatureKey, coerce_to_feature_key
from metaxy.versioning.samples import count_samples, sample_columns

__all__ = ["Counts", "FeatureForecast", "RunPlan", "plan_run", "sample_columns"]

PlanStatus = Literal["root", "needs update", "up-to-date", "upstream missing", "unpredictable"]


class Counts(NamedTuple):
    """How many samples are new, stale and orphaned."""

    new: int
    stale: int
    orphaned: int

    @property
    def recomputed(self) -> int:
        """Samples a run computes: new plus stale."""
        return self.new + self.stale


@dataclass(frozen=True)
class FeatureForecast:
    """The prediction for one feature.

    Attributes:
        feature: the feature key.
        status: ``needs update``, ``up-to-date``, ``root`` (a root without samples: its stored
            samples stand), ``upstream missing`` (an upstream has no metadata and nothing will
            write it) or ``unpredictable`` (downstream of an expansion feature that will change:
            its child ids are only known once it runs).
        predicted: new / stale / orphaned samples the run will find, cascade included.
        direct: the same counts against the metadata stored today.
        note: why a feature could not be predicted, or why ``predicted`` is an upper bound.
        upper_bound: ``predicted`` counts samples whose recomputation depends on the content an
            upstream feature with ``data_version_columns`` will write (early cutoff): the run
            recomputes at most these, fewer when that content does not change.
    """

    feature: str
    status: PlanStatus
    predicted: Counts | None = None
    direct: Counts | None = None
    note: str | None = None
    upper_bound: bool = False

    @property
    def cascaded(self) -> int:
        """Samples recomputed only because an upstream feature is recomputed first."""
        if self.predicted is None or self.direct is None:
            return 0
        return max(self.predicted.recomputed - self.direct.recomputed, 0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"feature": self.feature, "status": self.status}
        for name in ("predicted", "direct"):
            counts = getattr(self, name)
            out[name] = None if counts is None else counts._asdict()
        out["cascaded"] = self.cascaded
        out["note"] = self.note
        if self.upper_bound:  # only then: plans without early cutoff keep their published shape
            out["upper_bound"] = True
        return out


@dataclass(frozen=True)
class RunPlan:
    """Per feature (upstream first), what the next run recomputes."""

    project_version: str | None
    features: list[FeatureForecast] = field(default_factory=list)

    @property
    def needs_update(self) -> bool:
        """Whether any feature has samples to compute, or could not be predicted."""
        return any(f.status in ("needs update", "upstream missing", "unpredictable") for f in self.features)

    def __getitem__(self, key: Any) -> FeatureForecast:
        wanted = coerce_to_feature_key(key).to_string()
        for f in self.features:
            if f.feature == wanted:
                return f
        raise KeyError(wanted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_version": self.project_version,
            "needs_update": self.needs_update,
            "features": [f.to_dict() for f in self.features],
        }


def _count(increment: Any, columns: list[str]) -> Counts:
    def n(frame: Any) -> int:
        return count_samples(frame.to_polars(), columns)

    return Counts(n(increment.new), n(increment.stale), n(increment.orphaned))


def _closure(graph: FeatureGraph, keys: Sequence[FeatureKey]) -> list[FeatureKey]:
    """``keys`` and all their upstream features, upstream first."""
    found: set[FeatureKey] = set()
    frontier = list(keys)
    while frontier:
        key = frontier.pop()
        if key in found:
            continue
        found.add(key)
        frontier += [d.feature for d in graph.get_feature_definition(key).spec.deps]
    return graph.topological_sort_features(found)


def plan_run(
    store: Any,
    graph: FeatureGraph | None = None,
    *,
    features: Sequence[Any] | None = None,
    samples: Mapping[Any, Any] | None = None,
    progress: Any = None,
) -> RunPlan:
    """Predict, per feature, the samples a full run of the graph will find new, stale and orphaned.

    Args:
        store: the real store (only read; opened here if it is closed).
        graph: the graph of the coming run (default: the active graph); may differ from what is stored.
        features: report these features (default: every feature of ``graph``). Their upstream
            features are replayed too, so the cascade into them is counted.
        samples: root features' samples, as the run will pass them to ``resolve_update``. A root
            without samples keeps its stored samples (status ``root``).
        progress: optional callable ``progress(feature_key_string)`` called after each feature.

    Returns:
        A :class:`RunPlan` listing the reported features upstream first.

    Raises:
        FeatureNotInGraphError: a key of ``features`` or ``samples`` is not in the graph.
        MetadataStoreError: reading the store failed.

    Example:
        >>> plan = plan_run(store)  # doctest: +SKIP
        >>> plan["video/clips"].predicted  # doctest: +SKIP
        Counts(new=0, stale=12, orphaned=0)
    """
    from metaxy.metadata_store import InMemoryMetadataStore

    graph = graph or current_graph()
    wanted = (
        [coerce_to_feature_key(k) for k in features]
        if features is not None
        else graph.list_features(only_current_project=False)
    )
    for key in wanted:
        graph.get_feature_definition(key)
    given = {coerce_to_feature_key(k): v for k, v in (samples or {}).items()}
    for key in given:
        graph.get_feature_definition(key)
    order = _closure(graph, wanted)
    reported = set(wanted)
    scratch = InMemoryMetadataStore(hash_algorithm=store.hash_algorithm)
    try:
        project_version: str | None = graph.project_version
    except RuntimeError:
        project_version = None
    out: dict[FeatureKey, FeatureForecast] = {}
    with graph.use(), warnings.catch_warnings(), scratch.open("w"):
        warnings.simplefilter("ignore")  # table creation / Polars notices of the throw-away copy
        with store.open("r") if not store.is_open else contextlib.nullcontext():
            present = [key for key in order if store.has_feature(key)]
            if present:
                scratch.copy_metadata(store, present, with_feature_history=False)
        direct = {key: _direct(scratch, graph, key, given.get(key)) for key in order if key in reported}
        blocked: dict[FeatureKey, str] = {}
        bounded: dict[FeatureKey, str] = {}  # recomputed features whose data version is content (early cutoff)
        for key in order:
            forecast = _forecast(scratch, graph, key, given.get(key), direct.get(key), blocked, bounded)
            if key in reported:
                out[key] = forecast
            if progress is not None:
                progress(key.to_string())
    return RunPlan(project_version, [out[k] for k in order if k in out])


def _direct(scratch: Any, graph: FeatureGraph, key: FeatureKey, samples: Any) -> Counts | None:
    spec = graph.get_feature_definition(key).spec
    if not spec.deps and samples is None:
        return None
    try:
        return _count(scratch.resolve_update(key, samples=samples), sample_columns(spec))
    except FeatureNotFoundError:
        return None


def _forecast(
    scratch: Any,
    graph: FeatureGraph,
    key: FeatureKey,
    samples: Any,
    direct: Counts | None,
    blocked: dict[FeatureKey, str],
    bounded: dict[FeatureKey, str],
) -> FeatureForecast:
    spec = graph.get_feature_definition(key).spec
    name = key.to_string()
    upstream_blocked = next((blocked[d.feature] for d in spec.deps if d.feature in blocked), None)
    if upstream_blocked is not None:
        blocked[key] = upstream_blocked
        return FeatureForecast(
            name,
            "unpredictable",
            direct=direct,
            note=f"'{upstream_blocked}' has expansion lineage and will change: its child ids are known only "
            "once it runs. Hint: run it, then plan again.",
        )
    if not spec.deps and samples is None:
        return FeatureForecast(name, "root", note="root feature: its stored samples are assumed unchanged")
    try:
        increment = scratch.resolve_update(key, samples=samples)
    except FeatureNotFoundError as exc:
        missing = ", ".join(str(k) for k in getattr(exc, "keys", [])) or "an upstream feature"
        return FeatureForecast(
            name, "upstream missing", direct=direct, note=f"no metadata for {missing}; nothing in this run writes it"
        )
    units = sample_columns(spec)
    counts = _count(increment, units)
    status: PlanStatus = "needs update" if counts.recomputed else "up-to-date"
    cutoff = next((bounded[d.feature] for d in spec.deps if d.feature in bounded), None)
    if cutoff is not None:
        bounded[key] = cutoff
    if spec.data_version_columns is not None and counts.recomputed:
        bounded[key] = name
    if graph.get_downstream_features([key]):
        _replay(scratch, graph, key, spec, increment, units, counts, blocked)
    if cutoff is None:
        return FeatureForecast(name, status, predicted=counts, direct=direct)
    note = (
        f"at most: '{cutoff}' derives its data version from the content it writes; samples whose content "
        "does not change are not recomputed downstream (early cutoff)"
    )
    return FeatureForecast(name, status, predicted=counts, direct=direct, note=note, upper_bound=True)


def _replay(
    scratch: Any,
    graph: FeatureGraph,
    key: FeatureKey,
    spec: FeatureSpec,
    increment: Any,
    units: list[str],
    counts: Counts,
    blocked: dict[FeatureKey, str],
) -> None:
    """Write what the run would write for ``key`` into the scratch store."""
    import polars as pl

    if any(dep.lineage.is_expansion for dep in spec.deps):
        if counts.recomputed or counts.orphaned:
            blocked[key] = key.to_string()
        return
    declared = set(graph.get_feature_definition(key).columns)
    todo = pl.concat([increment.new.to_polars(), increment.stale.to_polars()], how="diagonal_relaxed")
    keep = [c for c in todo.columns if c in declared or c.startswith("metaxy_")]
    if any(dep.lineage.is_aggregation for dep in spec.deps):
        todo = todo.unique(units, keep="first", maintain_order=True)
    if len(todo):
        # As resolved: the data version is the provenance, also for a feature that hashes its content
        # (the content is unknown before it runs): the worst case, every recomputed sample changes.
        scratch.write(key, todo.select(keep), preserve_feature_version=spec.data_version_columns is not None)
    orphaned = increment.orphaned.to_polars().select(units).unique()
    if len(orphaned):
        unit = pl.concat_str([pl.col(u).cast(pl.String) for u in units], separator="\x1f")
        gone = orphaned.select(unit.alias("u"))["u"].to_list()
        scratch.delete(key, unit.is_in(gone))
