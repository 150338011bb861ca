"""The resolve plan: everything an executor needs to compute a feature's increment, derived once
from the graph and free of any dataframe library.

Executors (Polars, SQL) consume a :class:`ResolvePlan`; they never look at the graph again. The
plan fixes, per dependency, how the upstream is prepared (drops, renames, filters, select,
lineage) and, per downstream field, the exact ``|``-joined string whose hash is its provenance:
``"<field>|<code version>|<fq parent 1>|<value 1>|..."`` with parents in FQ-string order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from metaxy.errors import ColumnCollisionError, DependencyError, InvalidRenameError
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.graph import FeatureGraph
from metaxy.models.keys import FeatureKey, coerce_to_feature_key
from metaxy.models.lineage import LineageRelationship

__all__ = ["DepPlan", "FieldHashPlan", "ParentRef", "ResolvePlan", "compile_plan"]

# Lifecycle columns of an upstream that never take part in a resolve.
UPSTREAM_DROPPED: tuple[str, ...] = (
    c.FEATURE_VERSION,
    c.PROJECT_VERSION,
    c.CREATED_AT,
    c.UPDATED_AT,
    c.DELETED_AT,
    c.MATERIALIZATION_ID,
)

JoinMode = Literal["inner", "outer"]


@dataclass(frozen=True)
class ParentRef:
    """One parent field of a downstream field: its FQ string and where its value comes from."""

    fq: str  # "video/raw.audio"
    dep_index: int
    struct_key: str  # field name inside the upstream's data-version struct


@dataclass(frozen=True)
class FieldHashPlan:
    """How one downstream field's provenance string is built."""

    struct_key: str
    field: str  # field key string, first item of the hashed string
    code_version: str
    parents: tuple[ParentRef, ...]  # FQ-string order


@dataclass(frozen=True)
class DepPlan:
    """How one upstream is prepared before the join."""

    index: int
    feature: FeatureKey
    feature_version: str  # the upstream's current feature version (only those rows are read)
    suffix: str  # "__video_raw"
    id_columns: tuple[str, ...]  # upstream id columns after rename
    rename: Mapping[str, str]  # user renames, applied together with `system_rename`
    system_rename: Mapping[str, str]  # versioning column -> suffixed name
    select: tuple[str, ...] | None  # post-rename columns to keep (None = all)
    filters: tuple[FilterExpression, ...]  # FeatureDep filters, post-rename
    lineage: LineageRelationship
    join_columns: tuple[str, ...]  # this dep's input id columns (post-rename)
    optional: bool
    field_struct_keys: tuple[str, ...]  # the upstream's fields, sorted

    @property
    def data_version_by_field(self) -> str:
        return c.DATA_VERSION_BY_FIELD + self.suffix

    @property
    def data_version(self) -> str:
        return c.DATA_VERSION + self.suffix

    @property
    def provenance_by_field(self) -> str:
        return c.PROVENANCE_BY_FIELD + self.suffix

    @property
    def provenance(self) -> str:
        return c.PROVENANCE + self.suffix

    @property
    def versioning_columns(self) -> tuple[str, ...]:
        return tuple(self.system_rename.values())

    @property
    def all_renames(self) -> dict[str, str]:
        return {**self.rename, **self.system_rename}

    def check_stored_columns(self, names: Sequence[str]) -> None:
        """Raise ``DependencyError`` unless the upstream's stored columns allow this dep."""
        missing = [col for col in (*self.rename, *c.VERSIONING_COLUMNS) if col not in names]
        if missing:
            raise DependencyError(
                f"Upstream '{self.feature}' has no column(s) {missing}. Available: {list(names)}. "
                "Hint: check the FeatureDep's rename, and that the upstream was written by metaxy."
            )

    def check_selected(self, wanted: Sequence[str], names: Sequence[str]) -> None:
        """Raise ``DependencyError`` if ``select`` names columns the renamed upstream lacks."""
        absent = [col for col in wanted if col not in names]
        if absent:
            raise DependencyError(
                f"FeatureDep on '{self.feature}' selects {absent}, which the upstream does not have "
                f"(after renames). Available: {list(names)}. Hint: fix `select` (it uses post-rename names)."
            )


@dataclass(frozen=True)
class ResolvePlan:
    """Everything needed to resolve one feature's increment."""

    feature: FeatureKey
    feature_version: str
    id_columns: tuple[str, ...]
    join_keys: tuple[str, ...]  # upstreams are joined, and expected/stored rows matched, on these
    deps: tuple[DepPlan, ...]
    fields: tuple[FieldHashPlan, ...]  # sorted by struct key

    @property
    def is_root(self) -> bool:
        return not self.deps

    @property
    def join_mode(self) -> JoinMode:
        """``inner`` when some dep is required (optional ones left-join), ``outer`` when all are optional."""
        return "inner" if any(not d.optional for d in self.deps) else "outer"

    @property
    def collapse_stored(self) -> bool:
        """Stored rows are matched at a coarser level than their ids (expansion lineage)."""
        return set(self.join_keys) != set(self.id_columns)

    @property
    def field_struct_keys(self) -> tuple[str, ...]:
        return tuple(f.struct_key for f in self.fields)

    @property
    def system_upstream_columns(self) -> frozenset[str]:
        return frozenset(col for d in self.deps for col in d.versioning_columns)

    def check_collisions(self, columns: Sequence[Sequence[str]]) -> None:
        """Raise ``ColumnCollisionError`` if two prepared upstreams (their columns given in dep
        order) share a column other than the join keys."""
        seen: dict[str, int] = {}
        for dep, names in zip(self.deps, columns, strict=True):
            for col in names:
                if col in self.join_keys:
                    continue
                if col in seen:
                    raise ColumnCollisionError(
                        f"Found column collisions while joining the upstreams of '{self.feature}': column '{col}' "
                        f"comes from both '{self.deps[seen[col]].feature}' and '{dep.feature}'. "
                        "Hint: drop it with `select` or rename it with `rename` in one FeatureDep."
                    )
                seen[col] = dep.index


def compile_plan(graph: FeatureGraph, key: Any) -> ResolvePlan:
    """Compile (and cache on the graph) the resolve plan of ``key``.

    Raises:
        InvalidRenameError: a rename targets a system column or an upstream id column, two
            renames share a target, or two deps select the same non-id column.
        plus every error of :meth:`FeatureGraph.get_feature_plan`.
    """
    key = coerce_to_feature_key(key)
    return graph.cached("resolve_plan", key, lambda: _compile(graph, key))


def _compile(graph: FeatureGraph, key: FeatureKey) -> ResolvePlan:
    fplan = graph.get_feature_plan(key)
    spec = fplan.definition.spec
    deps: list[DepPlan] = []
    index_by_key: dict[FeatureKey, int] = {}
    for i, (dep, up) in enumerate(zip(spec.deps, fplan.upstream, strict=True)):
        index_by_key[up.key] = i
        rename = dict(dep.rename or {})
        _check_renames(key, up.key, rename, up.id_columns)
        ids = tuple(rename.get(col, col) for col in up.id_columns)
        suffix = up.key.to_column_suffix()
        system_rename = {col: col + suffix for col in c.VERSIONING_COLUMNS}
        if dep.lineage.is_identity:
            join_columns = ids
        elif dep.lineage.is_aggregation:
            join_columns = dep.lineage.on or spec.id_columns
        else:
            assert dep.lineage.on is not None
            join_columns = dep.lineage.on
        select = None
        if dep.select is not None:
            keep = [*ids, *join_columns, *system_rename.values(), *dep.select]
            select = tuple(dict.fromkeys(keep))
        deps.append(
            DepPlan(
                index=i,
                feature=up.key,
                feature_version=graph.get_feature_version(up.key),
                suffix=suffix,
                id_columns=ids,
                rename=rename,
                system_rename=system_rename,
                select=select,
                filters=dep.filter_expressions,
                lineage=dep.lineage,
                join_columns=tuple(join_columns),
                optional=dep.optional,
                field_struct_keys=tuple(sorted(f.key.to_struct_key() for f in up.spec.fields)),
            )
        )
    _check_cross_dep_selects(key, deps)
    join_keys = _join_keys(deps, spec.id_columns)
    fields = tuple(
        sorted(
            (
                FieldHashPlan(
                    struct_key=f.key.to_struct_key(),
                    field=f.key.to_string(),
                    code_version=f.code_version,
                    parents=tuple(
                        ParentRef(p.to_string(), index_by_key[p.feature], p.field.to_struct_key()) for p in f.parents
                    ),
                )
                for f in fplan.fields
            ),
            key=lambda f: f.struct_key,
        )
    )
    return ResolvePlan(
        feature=key,
        feature_version=graph.get_feature_version(key),
        id_columns=spec.id_columns,
        join_keys=join_keys,
        deps=tuple(deps),
        fields=fields,
    )


def _join_keys(deps: list[DepPlan], id_columns: tuple[str, ...]) -> tuple[str, ...]:
    if not deps:
        return id_columns
    shared = set(deps[0].join_columns)
    for d in deps[1:]:
        shared &= set(d.join_columns)
    ordered = [col for col in deps[0].join_columns if col in shared]
    return tuple(ordered) or id_columns


def _check_renames(feature: FeatureKey, upstream: FeatureKey, rename: dict[str, str], up_ids: tuple[str, ...]) -> None:
    where = f"FeatureDep of '{feature}' on '{upstream}'"
    targets = list(rename.values())
    for old, new in rename.items():
        if c.is_system_column(new) or c.is_system_column(old):
            raise InvalidRenameError(
                f"{where}: Cannot rename column '{old}' to system column name '{new}'. "
                "Hint: metaxy_* columns are reserved; pick another name."
            )
        if new in up_ids and old not in up_ids:
            raise InvalidRenameError(
                f"{where}: Cannot rename column '{old}' to ID column '{new}' of '{upstream}'. "
                "Hint: rename the id column itself, or pick another name."
            )
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise InvalidRenameError(
            f"{where}: Duplicate column names after renaming: {dupes}. Hint: give each renamed column its own name."
        )


def _check_cross_dep_selects(feature: FeatureKey, deps: list[DepPlan]) -> None:
    seen: dict[str, FeatureKey] = {}
    for d in deps:
        if d.select is None:
            continue
        for col in d.select:
            if col in d.id_columns or col in d.join_columns or col in d.system_rename.values():
                continue
            if col in seen:
                raise InvalidRenameError(
                    f"Feature '{feature}': column '{col}' selected from both '{seen[col]}' and '{d.feature}' "
                    "would have duplicate column names after renaming. Hint: rename it in one of the FeatureDeps."
                )
            seen[col] = d.feature
