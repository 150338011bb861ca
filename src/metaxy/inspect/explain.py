"""Why is a sample new, stale or orphaned? The cause, down to the upstream field and value that changed.

A sample is *new* when no stored row exists under the feature's current version: never written,
soft-deleted, or written under an older feature version (a code version or the graph changed).
It is *stale* when its stored provenance differs from what the upstream's current data versions
give: the explanation compares the stored per-field provenance with the expected one and, for
each changed field, finds the upstream field whose data version changed since the sample was
written (old → new value, when and by which materialization the new one was written). It is
*orphaned* when the upstream no longer produces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metaxy.errors import FeatureNotFoundError
from metaxy.models import constants as c
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import FeatureKey, coerce_to_feature_key

from ._samples import as_dict, history, match, timestamp

__all__ = ["Cause", "Explanation", "explain_sample"]

SampleStatus = Literal["new", "stale", "orphaned", "up-to-date", "root", "unknown", "upstream missing"]


@dataclass(frozen=True)
class Cause:
    """One reason for a sample's status.

    Attributes:
        kind: ``never_written``, ``deleted``, ``feature_version_changed``, ``code_version_changed``,
            ``upstream_data_changed``, ``provenance_changed``, ``upstream_sample_missing``.
        message: a sentence saying it.
        feature / field: where the change happened (the upstream feature and field for upstream causes).
        old / new: the value before and after (a data version, feature version or code version).
        written_at / materialization_id: when, and by which materialization, the new value was written.
    """

    kind: str
    message: str
    feature: str | None = None
    field: str | None = None
    old: str | None = None
    new: str | None = None
    written_at: str | None = None
    materialization_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Explanation:
    """The status of one sample of one feature and its causes."""

    feature: str
    sample: dict[str, Any]
    status: SampleStatus
    causes: list[Cause] = field(default_factory=list)
    stored: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "sample": self.sample,
            "status": self.status,
            "causes": [x.to_dict() for x in self.causes],
            "stored": self.stored,
        }


def _when(value: Any) -> str:
    """A timestamp for a sentence: seconds precision, UTC."""
    return "?" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _stored_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "feature_version": row.get(c.FEATURE_VERSION),
        "provenance": row.get(c.PROVENANCE),
        "data_version": row.get(c.DATA_VERSION),
        "created_at": timestamp(row.get(c.CREATED_AT)),
        "updated_at": timestamp(row.get(c.UPDATED_AT)),
        "deleted_at": timestamp(row.get(c.DELETED_AT)),
        "materialization_id": row.get(c.MATERIALIZATION_ID),
    }


def explain_sample(
    store: Any, feature: Any, sample: Mapping[str, Any], *, graph: FeatureGraph | None = None
) -> Explanation:
    """Explain why one sample of ``feature`` is new, stale or orphaned (or that it is up to date).

    Args:
        store: an open store.
        feature: the feature (key, key string or class).
        sample: ``{id column: value}``; values are compared as text.
        graph: the graph to explain against (default: the active one).

    Raises:
        FeatureNotInGraphError: the feature is unknown.
        StoreNotOpenError: the store is not open.
    """
    graph = graph or current_graph()
    key = coerce_to_feature_key(feature)
    defn = graph.get_feature_definition(key)
    with graph.use():
        return _explain(store, graph, key, defn, dict(sample))


def _explain(store: Any, graph: FeatureGraph, key: FeatureKey, defn: Any, sample: dict[str, Any]) -> Explanation:
    from metaxy.versioning.plan import compile_plan

    name = key.to_string()
    version = graph.get_feature_version(key)
    rows = history(store, key, sample)
    current_rows = [r for r in rows.iter_rows(named=True) if r[c.FEATURE_VERSION] == version] if rows.height else []
    latest = current_rows[-1] if current_rows else None
    stored = _stored_summary(latest) if latest is not None else None
    plan = compile_plan(graph, key)
    if plan.is_root:
        causes = [] if latest else _new_causes(store, graph, key, rows, version)
        return Explanation(name, sample, "root", causes, stored)
    try:
        inc = store.resolve_update(key, lazy=True)
    except FeatureNotFoundError as exc:
        missing = ", ".join(str(k) for k in getattr(exc, "keys", []))
        cause = Cause("upstream_sample_missing", f"Upstream {missing or 'metadata'} has no table.", feature=missing)
        return Explanation(name, sample, "upstream missing", [cause], stored)
    keys = {col: v for col, v in sample.items() if col in plan.join_keys} or sample
    pred = match(keys)
    found = {part: getattr(inc, part).filter(pred).collect().to_polars() for part in ("new", "stale", "orphaned")}
    if found["new"].height:
        return Explanation(name, sample, "new", _new_causes(store, graph, key, rows, version), stored)
    if found["stale"].height:
        expected = found["stale"].row(0, named=True)
        return Explanation(name, sample, "stale", _stale_causes(store, graph, key, plan, latest, expected), stored)
    if found["orphaned"].height:
        return Explanation(name, sample, "orphaned", _orphan_causes(store, plan, keys), stored)
    if latest is not None and latest.get(c.DELETED_AT) is None:
        return Explanation(name, sample, "up-to-date", _pending_upstream(store, graph, key, sample), stored)
    return Explanation(
        name,
        sample,
        "unknown",
        [Cause("upstream_sample_missing", f"Neither '{name}' nor its upstream features have this sample.")],
        stored,
    )


def _pending_upstream(store: Any, graph: FeatureGraph, key: FeatureKey, sample: Mapping[str, Any]) -> list[Cause]:
    """Upstream features (transitively) where this sample is new or stale: it may change once they run."""
    from metaxy.versioning.plan import compile_plan

    causes = []
    ancestors = [k for k in graph.topological_sort_features() if k in _ancestors(graph, key)]
    for up in ancestors:
        plan = compile_plan(graph, up)
        on = {col: v for col, v in sample.items() if col in plan.join_keys}
        if plan.is_root or not on:
            continue
        try:
            inc = store.resolve_update(up, lazy=True)
        except FeatureNotFoundError:
            continue
        pred = match(on)
        for part in ("stale", "new"):
            if len(getattr(inc, part).filter(pred).select(list(on)).head(1).collect()):
                causes.append(
                    Cause(
                        "upstream_pending",
                        f"Up to date today, but upstream '{up}' is {part} for this sample: once it is recomputed "
                        "this sample may become stale (see `mx plan`).",
                        feature=up.to_string(),
                    )
                )
                break
    return causes


def _ancestors(graph: FeatureGraph, key: FeatureKey) -> set[FeatureKey]:
    found: set[FeatureKey] = set()
    frontier = [d.feature for d in graph.get_feature_definition(key).spec.deps]
    while frontier:
        k = frontier.pop()
        if k not in found:
            found.add(k)
            frontier += [d.feature for d in graph.get_feature_definition(k).spec.deps]
    return found


def _new_causes(store: Any, graph: FeatureGraph, key: FeatureKey, rows: Any, version: str) -> list[Cause]:
    name = key.to_string()
    if not rows.height:
        return [Cause("never_written", f"'{name}' has never stored this sample.", feature=name)]
    all_rows = list(rows.iter_rows(named=True))
    current = [r for r in all_rows if r[c.FEATURE_VERSION] == version]
    if current and current[-1].get(c.DELETED_AT) is not None:
        last = current[-1]
        return [
            Cause(
                "deleted",
                f"The sample was soft-deleted at {_when(last[c.DELETED_AT])}.",
                feature=name,
                written_at=timestamp(last[c.DELETED_AT]),
                materialization_id=last.get(c.MATERIALIZATION_ID),
            )
        ]
    last = all_rows[-1]
    old = last[c.FEATURE_VERSION]
    causes = [
        Cause(
            "feature_version_changed",
            f"Stored under feature version {old}; the current version is {version}.",
            feature=name,
            old=old,
            new=version,
            written_at=timestamp(last.get(c.UPDATED_AT)),
            materialization_id=last.get(c.MATERIALIZATION_ID),
        )
    ]
    return causes + _field_changes(store, graph, key, old)


def _field_changes(store: Any, graph: FeatureGraph, key: FeatureKey, old_version: str) -> list[Cause]:
    """Which fields' code versions changed since ``old_version`` (needs that version pushed)."""
    import polars as pl

    from metaxy.metadata_store.system import SystemTableStorage

    from .graph_view import diff_graphs

    storage = SystemTableStorage(store)
    rows = storage._rows().filter(
        (pl.col("feature_key") == key.to_string()) & (pl.col(c.FEATURE_VERSION) == old_version)
    )
    if rows.height == 0:
        return []
    latest = rows.sort("recorded_at").row(-1, named=True)
    old_graph = storage.load_graph_from_snapshot(latest[c.PROJECT_VERSION], project=latest["project"])
    out = []
    with old_graph.use():
        diff = diff_graphs(old_graph, graph, keys=[key])
    for change in diff.changed:
        for f in change.fields:
            if f.status == "changed" and f.old_code_version != f.new_code_version:
                out.append(
                    Cause(
                        "code_version_changed",
                        f"Field '{f.field}' code version {f.old_code_version} → {f.new_code_version}.",
                        feature=change.feature,
                        field=f.field,
                        old=f.old_code_version,
                        new=f.new_code_version,
                    )
                )
            elif f.status == "changed":
                out.append(
                    Cause(
                        "field_version_changed",
                        f"Field '{f.field}' version {f.old_version} → {f.new_version} (an upstream field's "
                        "definition changed).",
                        feature=change.feature,
                        field=f.field,
                        old=f.old_version,
                        new=f.new_version,
                    )
                )
            else:
                out.append(
                    Cause(
                        f"field_{f.status}", f"Field '{f.field}' was {f.status}.", feature=change.feature, field=f.field
                    )
                )
    return out


def _upstream_values(plan: Any, dep: Any, graph: FeatureGraph, sample: Mapping[str, Any]) -> dict[str, Any]:
    """The sample's id values in the upstream's own column names (undoing the dep's rename).

    Uses the upstream's id columns and the dep's lineage ``on`` columns (an aggregation group's
    members are found by the group key).
    """
    back = {new: old for old, new in dep.rename.items()}
    usable = set(graph.get_feature_definition(dep.feature).id_columns) | set(dep.lineage.on or ())
    out = {}
    for col, value in sample.items():
        original = back.get(col, col)
        if original in usable:
            out[original] = value
    return out


def _stale_causes(
    store: Any,
    graph: FeatureGraph,
    key: FeatureKey,
    plan: Any,
    latest: Mapping[str, Any] | None,
    expected: Mapping[str, Any],
) -> list[Cause]:
    if latest is None:
        return [Cause("provenance_changed", "The stored row has no provenance.", feature=key.to_string())]
    stored_pbf = as_dict(latest.get(c.PROVENANCE_BY_FIELD))
    expected_pbf = as_dict(expected.get(c.PROVENANCE_BY_FIELD))
    written = latest.get(c.UPDATED_AT)
    causes: list[Cause] = []
    gplan = graph.get_feature_plan(key)
    sample = {col: expected[col] for col in plan.join_keys if col in expected}
    for fplan in gplan.fields:
        struct_key = fplan.key.to_struct_key()
        if stored_pbf.get(struct_key) == expected_pbf.get(struct_key):
            continue
        found = False
        for parent in fplan.parents:
            dep = next(d for d in plan.deps if d.feature == parent.feature)
            found_here = _upstream_change(store, graph, plan, dep, parent, sample, written)
            causes += found_here
            found = found or bool(found_here)
        if not found:
            causes.append(
                Cause(
                    "provenance_changed",
                    f"Field '{fplan.key}' provenance {stored_pbf.get(struct_key)} → {expected_pbf.get(struct_key)}.",
                    feature=key.to_string(),
                    field=fplan.key.to_string(),
                    old=stored_pbf.get(struct_key),
                    new=expected_pbf.get(struct_key),
                )
            )
    if not causes:
        causes.append(
            Cause(
                "provenance_changed",
                f"Stored provenance {latest.get(c.PROVENANCE)} differs from the expected {expected.get(c.PROVENANCE)}.",
                feature=key.to_string(),
                old=latest.get(c.PROVENANCE),
                new=expected.get(c.PROVENANCE),
            )
        )
    # one cause per upstream field, even when several downstream fields depend on it
    unique: dict[tuple[Any, ...], Cause] = {}
    for cause in causes:
        unique.setdefault((cause.kind, cause.feature, cause.field, cause.old, cause.new), cause)
    return list(unique.values())


def _upstream_change(
    store: Any, graph: FeatureGraph, plan: Any, dep: Any, parent: Any, sample: Mapping[str, Any], written: Any
) -> list[Cause]:
    """Per upstream sample behind ``sample`` (one, or an aggregation's members): its changed data version."""
    values = _upstream_values(plan, dep, graph, sample)
    rows = history(store, dep.feature, values)
    if not rows.height:
        return []
    version = graph.get_feature_version(dep.feature)
    id_cols = graph.get_feature_definition(dep.feature).id_columns
    by_id: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows.iter_rows(named=True):
        if r[c.FEATURE_VERSION] == version:
            by_id.setdefault(tuple(r.get(col) for col in id_cols), []).append(r)
    struct_key = parent.field.to_struct_key()
    up = dep.feature.to_string()
    causes = []
    for ident, live in by_id.items():
        now = live[-1]
        before = [r for r in live if written is None or r[c.UPDATED_AT] <= written]
        new = as_dict(now.get(c.DATA_VERSION_BY_FIELD)).get(struct_key)
        old = as_dict(before[-1].get(c.DATA_VERSION_BY_FIELD)).get(struct_key) if before else None
        if old == new and now.get(c.DELETED_AT) is None:
            continue
        who = (
            "" if len(by_id) == 1 else f" (sample {', '.join(f'{k}={v}' for k, v in zip(id_cols, ident, strict=True))})"
        )
        run = f" by {now[c.MATERIALIZATION_ID]}" if now.get(c.MATERIALIZATION_ID) else ""
        causes.append(
            Cause(
                "upstream_data_changed",
                f"Upstream '{up}'{who} field '{parent.field}' data version {old or '(none)'} → {new}, written at "
                f"{_when(now.get(c.UPDATED_AT))}{run}.",
                feature=up,
                field=parent.field.to_string(),
                old=old,
                new=new,
                written_at=timestamp(now.get(c.UPDATED_AT)),
                materialization_id=now.get(c.MATERIALIZATION_ID),
            )
        )
    return causes


def _orphan_causes(store: Any, plan: Any, sample: Mapping[str, Any]) -> list[Cause]:
    graph = current_graph()
    causes = []
    for dep in plan.deps:
        values = _upstream_values(plan, dep, graph, sample)
        rows = history(store, dep.feature, values)
        version = graph.get_feature_version(dep.feature)
        live = [r for r in rows.iter_rows(named=True) if r[c.FEATURE_VERSION] == version] if rows.height else []
        up = dep.feature.to_string()
        if live and live[-1].get(c.DELETED_AT) is None:
            continue
        if live:
            when = timestamp(live[-1][c.DELETED_AT])
            causes.append(
                Cause(
                    "upstream_sample_missing",
                    f"Upstream '{up}' soft-deleted this sample at {when}.",
                    feature=up,
                    written_at=when,
                    materialization_id=live[-1].get(c.MATERIALIZATION_ID),
                )
            )
        else:
            causes.append(Cause("upstream_sample_missing", f"Upstream '{up}' has no row for this sample.", feature=up))
    return causes
