"""Where is sample X in my pipeline? One sample across every feature that shares its id.

:func:`trace_sample` walks the graph upstream first. It matches each feature's stored rows on the
id values known so far (those given, plus values learned on the way: an expansion child carries its
parent's id, an aggregation's group key is read from the member row), so a trace of one clip also
finds its 1:N children and the N:1 group it belongs to. Per feature it reports whether the sample
is present, new, stale, failed (quarantined by a recorded failure), orphaned, deleted or missing,
with the stored feature version, timestamps, materialization id (the Dagster run id when Dagster
wrote it) and the failures recorded for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from metaxy.errors import FeatureNotFoundError
from metaxy.models import constants as c
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import FeatureKey

from ._samples import history, match, timestamp

__all__ = ["TraceEntry", "trace_sample"]

TraceStatus = Literal["present", "new", "stale", "failed", "orphaned", "deleted", "missing", "outdated"]


@dataclass(frozen=True)
class TraceEntry:
    """The sample in one feature.

    Attributes:
        feature: the feature key.
        matched_on: the id values used to find it (given or learned from another feature).
        status: ``present`` (stored, current, up to date), ``new`` (the upstream has it, not stored yet),
            ``stale``, ``failed`` (new or stale, but quarantined by a recorded failure), ``orphaned``,
            ``deleted`` (soft-deleted), ``outdated`` (stored only under an older feature version) or
            ``missing`` (neither stored nor produced by the upstream).
        rows: stored rows matching (more than one for the 1:N children of an expansion).
        feature_version: the stored rows' feature version (the current one when present).
        current_version: the feature's current version.
        created_at / updated_at / materialization_id: of the latest matching stored row.
        failures: failures recorded for the sample (``error``, ``error_type``, ``failed_at``,
            ``feature_version``, ``materialization_id``, ``current``), newest first.
    """

    feature: str
    matched_on: dict[str, Any]
    status: TraceStatus
    rows: int = 0
    feature_version: str | None = None
    current_version: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    materialization_id: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _linking_columns(graph: FeatureGraph, keys: Sequence[FeatureKey]) -> set[str]:
    """Columns worth learning on the way: id columns and lineage ``on`` columns."""
    cols: set[str] = set()
    for key in keys:
        defn = graph.get_feature_definition(key)
        cols.update(defn.id_columns)
        for dep in defn.spec.deps:
            cols.update(dep.lineage.on or ())
    return cols


def trace_sample(
    store: Any, sample: Mapping[str, Any], *, features: Sequence[Any] | None = None, graph: FeatureGraph | None = None
) -> list[TraceEntry]:
    """Follow one sample through ``features`` (default: every feature of the graph), upstream first.

    Args:
        store: an open store.
        sample: ``{column: value}`` identifying the sample (values compared as text).
        features: the features to look in.
        graph: the graph (default: the active one).

    Returns:
        One entry per feature that has at least one of the known id columns; features sharing no
        column with the sample are left out.
    """
    graph = graph or current_graph()
    keys = graph.topological_sort_features(features if features is not None else graph.list_features())
    known = {col: str(v) for col, v in sample.items()}
    linking = _linking_columns(graph, keys)
    out: list[TraceEntry] = []
    with graph.use():
        for key in keys:
            defn = graph.get_feature_definition(key)
            columns = set(defn.columns) | set(defn.id_columns)
            for dep in defn.spec.deps:
                columns.update(dep.lineage.on or ())
            usable = {col: v for col, v in known.items() if col in columns}
            if not usable:
                continue
            entry, rows = _entry(store, graph, key, usable)
            failures = _failures(store, graph, key, usable)
            if failures:
                entry = TraceEntry(**{**entry.__dict__, "failures": failures})
            out.append(entry)
            for col in linking & set(rows.columns if rows.height else ()):
                values = rows[col].drop_nulls().cast(str).unique()
                if len(values) == 1 and col not in known:
                    known[col] = values[0]
    return out


def _entry(store: Any, graph: FeatureGraph, key: FeatureKey, usable: dict[str, str]) -> tuple[TraceEntry, Any]:
    import polars as pl

    name = key.to_string()
    version = graph.get_feature_version(key)
    rows = history(store, key, usable)
    current = rows.filter(pl.col(c.FEATURE_VERSION) == version) if rows.height else rows
    base: dict[str, Any] = {"feature": name, "matched_on": usable, "current_version": version}
    if current.height:
        id_cols = list(graph.get_feature_definition(key).id_columns)
        latest = current.unique(id_cols, keep="last", maintain_order=True)
        live = latest.filter(pl.col(c.DELETED_AT).is_null())
        last = (live if live.height else latest).row(-1, named=True)
        stamps: dict[str, Any] = {
            "feature_version": version,
            "created_at": timestamp(last.get(c.CREATED_AT)),
            "updated_at": timestamp(last.get(c.UPDATED_AT)),
            "materialization_id": last.get(c.MATERIALIZATION_ID),
        }
        if not live.height:
            return TraceEntry(status="deleted", rows=latest.height, **base, **stamps), latest
        status = _resolve_status(store, graph, key, usable) or "present"
        return TraceEntry(status=status, rows=live.height, **base, **stamps), live
    pending = _resolve_status(store, graph, key, usable)
    if rows.height:
        last = rows.row(-1, named=True)
        return (
            TraceEntry(
                status="new" if pending == "new" else "outdated",
                rows=0,
                feature_version=last[c.FEATURE_VERSION],
                created_at=timestamp(last.get(c.CREATED_AT)),
                updated_at=timestamp(last.get(c.UPDATED_AT)),
                materialization_id=last.get(c.MATERIALIZATION_ID),
                **base,
            ),
            rows,
        )
    return TraceEntry(status="new" if pending == "new" else "missing", **base), rows


def _resolve_status(store: Any, graph: FeatureGraph, key: FeatureKey, usable: dict[str, str]) -> TraceStatus | None:
    """``new`` / ``stale`` / ``orphaned`` when the sample is in that part of the increment, else None."""
    from metaxy.versioning.plan import compile_plan

    plan = compile_plan(graph, key)
    if plan.is_root:
        return None
    on = {col: v for col, v in usable.items() if col in plan.join_keys}
    if not on:
        return None
    try:
        inc = store.resolve_update(key, lazy=True)
    except FeatureNotFoundError:
        return None
    pred = match(on)
    parts: tuple[TraceStatus, ...] = ("failed", "stale", "orphaned", "new")
    for part in parts:
        if len(getattr(inc, part).filter(pred).select(list(on)).head(1).collect()):
            return part
    return None


def _failures(store: Any, graph: FeatureGraph, key: FeatureKey, usable: dict[str, str]) -> list[dict[str, Any]]:
    """Failures recorded for the sample (``store.record_failures``), newest first."""
    import polars as pl

    ids = list(graph.get_feature_definition(key).id_columns)
    on = {col: v for col, v in usable.items() if col in ids}
    if not on or key not in store.features_with_failures():
        return []
    rows = store.read_failures(key)
    rows = rows.filter(pl.all_horizontal(pl.col(col).cast(pl.String) == v for col, v in on.items()))
    current = graph.get_feature_version(key)
    return [
        {
            "error": r["metaxy_error"],
            "error_type": r["metaxy_error_type"],
            "failed_at": timestamp(r["metaxy_failed_at"]),
            "feature_version": r[c.FEATURE_VERSION],
            "materialization_id": r[c.MATERIALIZATION_ID],
            "current": r[c.FEATURE_VERSION] == current,
        }
        for r in rows.iter_rows(named=True)
    ]
