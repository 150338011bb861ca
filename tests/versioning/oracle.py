"""A naive, pure-Python model of a metadata store and of ``resolve_update`` (spec §3.3-§3.10, §5.2-§5.5).

Rows are plain dicts; hashes come from :func:`metaxy.versioning.hashing.hash_string`. From metaxy
the oracle uses only what a reader of the spec would: the feature plan (each field's code version
and parent fields, the upstream definitions and the ``FeatureDep`` objects) and the static feature
versions (as opaque labels to model the "current version" filter). Everything else -- the
write-time fill rules, merge-on-read, soft / hard deletes, upstream preparation, aggregation and
expansion lineage, joins, the per-field hash strings and the comparison -- is re-derived here
from the spec, deliberately without any cleverness.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import metaxy as mx
from metaxy.versioning.hashing import HashAlgorithm, hash_string

PBF = "metaxy_provenance_by_field"
PROV = "metaxy_provenance"
DVBF = "metaxy_data_version_by_field"
DV = "metaxy_data_version"
VERSIONING = (PBF, PROV, DVBF, DV)

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class OracleFeatureNotFound(KeyError):
    """The oracle store has no table for a feature."""


@dataclass
class _Raw:
    values: Row
    feature_version: str
    sort_key: int  # coalesce(deleted_at, updated_at), as a logical clock
    deleted: bool


def _order(raw: _Raw) -> tuple[int, str, str]:
    """Latest row first by coalesce(deleted_at, updated_at), ties by data version, then provenance."""
    return (raw.sort_key, raw.values.get(DV) or "", raw.values.get(PROV) or "")


def _struct_keys(definition: mx.FeatureDefinition) -> list[str]:
    return [f.key.to_struct_key() for f in definition.spec.fields]


def _sample_hash(algorithm: HashAlgorithm, by_field: Mapping[str, str | None]) -> str | None:
    values = [by_field[k] for k in sorted(by_field)]
    if any(v is None for v in values):
        return None
    return hash_string(algorithm, "|".join(str(v) for v in values))


@dataclass
class OracleStore:
    """Append-only tables of raw rows; merge-on-read like spec §5.2."""

    algorithm: HashAlgorithm
    tables: dict[mx.FeatureKey, list[_Raw]] = field(default_factory=dict)
    clock: int = 0

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    # --- write (§5.3) ------------------------------------------------------------------------------
    def write(self, graph: mx.FeatureGraph, key: Any, rows: Iterable[Row], columns: Iterable[str]) -> None:
        """Append ``rows``; ``columns`` says which columns the written frame had (absent vs null)."""
        key = mx.coerce_to_feature_key(key)
        present = set(columns)
        fields = _struct_keys(graph.get_feature_definition(key))
        version = graph.get_feature_version(key)
        stamp = self._tick()
        table = self.tables.setdefault(key, [])
        for given in rows:
            row = dict(given)
            pbf = dict(row[PBF])
            row[PBF] = pbf
            if PROV not in present or row.get(PROV) is None:
                row[PROV] = _sample_hash(self.algorithm, {f: pbf[f] for f in fields})
            if DVBF not in present:
                row[DVBF] = dict(pbf)
                row[DV] = row[PROV]
            else:
                override = row.get(DVBF)
                row[DVBF] = {f: pbf[f] if override is None or override.get(f) is None else override[f] for f in fields}
                if DV not in present:
                    row[DV] = _sample_hash(self.algorithm, row[DVBF])
                elif row.get(DV) is None:
                    row[DV] = row[PROV]
            table.append(_Raw(row, version, stamp, deleted=False))

    # --- read (§5.2) -------------------------------------------------------------------------------
    def has_table(self, key: Any) -> bool:
        return mx.coerce_to_feature_key(key) in self.tables

    def history(self, graph: mx.FeatureGraph, key: Any) -> list[_Raw]:
        """Raw rows of the current feature version (soft-delete markers included)."""
        key = mx.coerce_to_feature_key(key)
        if key not in self.tables:
            raise OracleFeatureNotFound(key)
        version = graph.get_feature_version(key)
        return [r for r in self.tables[key] if r.feature_version == version]

    def latest(self, graph: mx.FeatureGraph, key: Any, *, include_soft_deleted: bool = False) -> list[tuple[Row, bool]]:
        """Latest row per id of the current version, as ``(values, is_deleted)``."""
        key = mx.coerce_to_feature_key(key)
        ids = graph.get_feature_definition(key).id_columns
        best: dict[tuple[Any, ...], _Raw] = {}
        for raw in self.history(graph, key):
            k = tuple(raw.values[c] for c in ids)
            if k not in best or _order(raw) > _order(best[k]):
                best[k] = raw
        return [(r.values, r.deleted) for r in best.values() if include_soft_deleted or not r.deleted]

    def read(self, graph: mx.FeatureGraph, key: Any) -> list[Row]:
        """Default read semantics: current version, latest per id, soft-deleted hidden."""
        return [values for values, _ in self.latest(graph, key)]

    # --- deletes (§5.5) ----------------------------------------------------------------------------
    def soft_delete(
        self, graph: mx.FeatureGraph, key: Any, predicate: Predicate, *, with_sample_history: bool = False
    ) -> None:
        """Append a deletion marker for every matching row of the default read (or, with
        ``with_sample_history``, for every matching non-deleted row of the current version)."""
        key = mx.coerce_to_feature_key(key)
        if with_sample_history:
            candidates = [r.values for r in self.history(graph, key) if not r.deleted]
        else:
            candidates = self.read(graph, key)
        victims = [r for r in candidates if predicate(r)]
        stamp = self._tick()
        version = graph.get_feature_version(key)
        for values in victims:
            self.tables[key].append(_Raw(dict(values), version, stamp, deleted=True))

    def hard_delete(self, graph: mx.FeatureGraph, key: Any, predicate: Predicate) -> None:
        key = mx.coerce_to_feature_key(key)
        version = graph.get_feature_version(key)
        self.history(graph, key)  # raises for a missing table
        self.tables[key] = [r for r in self.tables[key] if not (r.feature_version == version and predicate(r.values))]


# --- resolve_update (§3.3-§3.10) -------------------------------------------------------------------


@dataclass
class OracleIncrement:
    keys: tuple[str, ...]  # the comparison columns K
    new: list[Row]
    stale: list[Row]
    orphaned: list[Row]
    input: list[Row]


@dataclass
class _Prepared:
    dep: mx.FeatureDep
    upstream: mx.FeatureDefinition
    rows: list[Row]
    input_ids: tuple[str, ...]


def _prepare(
    store: OracleStore,
    graph: mx.FeatureGraph,
    definition: mx.FeatureDefinition,
    dep: mx.FeatureDep,
    upstream: mx.FeatureDefinition,
) -> _Prepared:
    algorithm = store.algorithm
    rename = dict(dep.rename or {})
    up_ids = tuple(rename.get(c, c) for c in upstream.id_columns)
    lineage = dep.lineage
    if lineage.is_identity:
        input_ids = up_ids
    elif lineage.is_aggregation:
        input_ids = tuple(lineage.on or definition.id_columns)
    else:
        input_ids = tuple(lineage.on or ())
    out: list[Row] = []
    for row in store.read(graph, upstream.key):
        renamed = {rename.get(c, c): v for c, v in row.items() if c not in VERSIONING}
        if dep.select is not None:
            keep = set(dep.select) | set(up_ids) | set(input_ids)
            renamed = {c: v for c, v in renamed.items() if c in keep}
        renamed[DVBF] = dict(row[DVBF])
        out.append(renamed)
    if lineage.is_aggregation:
        groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
        for row in out:
            groups[tuple(row[c] for c in input_ids)].append(row)
        fields = _struct_keys(upstream)
        for members in groups.values():
            members.sort(key=lambda r: tuple(r[c] for c in up_ids))
            aggregated = {f: hash_string(algorithm, "|".join(str(m[DVBF][f]) for m in members)) for f in fields}
            for m in members:
                m[DVBF] = aggregated
    return _Prepared(dep, upstream, out, input_ids)


def _join(prepared: list[_Prepared], keys: tuple[str, ...]) -> list[tuple[Row, dict[mx.FeatureKey, Row | None]]]:
    """Inner-join required upstreams on K, left-join optional ones (full outer when all are
    optional, K coalesced). Returns ``(K values, {upstream key: row or None})`` per joined row."""
    indexes: list[dict[tuple[Any, ...], list[Row]]] = []
    for p in prepared:
        idx: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
        for r in p.rows:
            idx[tuple(r[c] for c in keys)].append(r)
        indexes.append(idx)
    required = [idx for p, idx in zip(prepared, indexes, strict=True) if not p.dep.optional]
    if required:
        candidates = set(required[0])
        for idx in required[1:]:
            candidates &= set(idx)
    else:
        candidates = set().union(*indexes)
    joined: list[tuple[Row, dict[mx.FeatureKey, Row | None]]] = []
    for k in candidates:
        choices: list[list[Row | None]] = [list(idx.get(k, [])) or [None] for idx in indexes]
        for combo in product(*choices):
            by_upstream = {p.upstream.key: r for p, r in zip(prepared, combo, strict=True)}
            joined.append((dict(zip(keys, k, strict=True)), by_upstream))
    return joined


def expected_rows(store: OracleStore, graph: mx.FeatureGraph, key: Any) -> tuple[tuple[str, ...], list[Row]]:
    """The comparison columns K and the expected rows (K, upstream user columns, versioning columns)."""
    algorithm = store.algorithm
    plan = graph.get_feature_plan(key)
    definition = plan.definition
    prepared = [_prepare(store, graph, definition, d, u) for d, u in zip(plan.deps, plan.upstream, strict=True)]
    shared = set(prepared[0].input_ids)
    for p in prepared[1:]:
        shared &= set(p.input_ids)
    keys = tuple(sorted(shared)) if shared else tuple(definition.id_columns)
    optional = {p.upstream.key for p in prepared if p.dep.optional}
    out: list[Row] = []
    for key_values, combo in _join(prepared, keys):
        row: Row = dict(key_values)
        for upstream_row in combo.values():
            for c, v in (upstream_row or {}).items():
                if c != DVBF and c not in keys:
                    row[c] = v
        by_field: dict[str, str | None] = {}
        for fp in plan.fields:
            parts: list[str] | None = [fp.key.to_string(), fp.code_version]
            for parent in sorted(fp.parents, key=lambda q: q.to_string()):
                upstream_row = combo[parent.feature]
                value = None if upstream_row is None else upstream_row[DVBF][parent.field.to_struct_key()]
                if value is None and parent.feature in optional:
                    value = ""
                if value is None or parts is None:
                    parts = None
                    continue
                parts += [parent.to_string(), str(value)]
            by_field[fp.key.to_struct_key()] = None if parts is None else hash_string(algorithm, "|".join(parts))
        row[PBF] = by_field
        row[PROV] = _sample_hash(algorithm, by_field)
        row[DVBF] = dict(by_field)
        row[DV] = row[PROV]
        out.append(row)
    return keys, out


def resolve(store: OracleStore, graph: mx.FeatureGraph, key: Any) -> OracleIncrement:
    """What ``resolve_update(key)`` must return (no samples, no filters)."""
    keys, expected = expected_rows(store, graph, key)
    try:
        stored = store.read(graph, key)
    except OracleFeatureNotFound:
        stored = []
    # Collapse stored rows to one per K (expansion: children share their parent's provenance).
    current: dict[tuple[Any, ...], Row] = {}
    for r in stored:
        current.setdefault(tuple(r[c] for c in keys), r)
    expected_keys = {tuple(r[c] for c in keys) for r in expected}
    new, stale = [], []
    for r in expected:
        match = current.get(tuple(r[c] for c in keys))
        if match is None:
            new.append(r)
        elif match[PROV] is None or match[PROV] != r[PROV]:
            stale.append(r)
    orphaned = [r for k, r in current.items() if k not in expected_keys]
    return OracleIncrement(keys, new, stale, orphaned, expected)
