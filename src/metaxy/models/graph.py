"""``FeatureGraph``: the registry of feature definitions and the calculator of static versions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from metaxy.errors import (
    DuplicateFeatureError,
    FeatureGraphCycleError,
    FeatureNotInGraphError,
    FieldDependencyError,
    MetaxyMissingFeatureDependency,
    NoUpstreamFieldsError,
)
from metaxy.models.definition import FeatureDefinition
from metaxy.models.feature_spec import FeatureDep
from metaxy.models.field import FieldSpec, SpecialFieldDep
from metaxy.models.keys import FeatureKey, FieldKey, FQFieldKey, coerce_to_feature_key
from metaxy.versioning.hashing import sha256_hex, truncation_length

if TYPE_CHECKING:
    from metaxy.models.feature import BaseFeature

_T = TypeVar("_T")

__all__ = ["FeatureGraph", "FeaturePlan", "FieldPlan", "current_graph", "get_feature_by_key", "graph"]


@dataclass(frozen=True)
class FieldPlan:
    """A downstream field and its resolved parent fields, ordered by their FQ strings."""

    key: FieldKey
    code_version: str
    parents: tuple[FQFieldKey, ...]


@dataclass(frozen=True)
class FeaturePlan:
    """The static, validated view of one feature and its direct upstreams."""

    definition: FeatureDefinition
    upstream: tuple[FeatureDefinition, ...]  # in spec.deps order
    fields: tuple[FieldPlan, ...]  # sorted by field key string

    @property
    def key(self) -> FeatureKey:
        return self.definition.key

    @property
    def deps(self) -> list[FeatureDep]:
        return self.definition.spec.deps

    @property
    def is_root(self) -> bool:
        return not self.definition.spec.deps


class FeatureGraph:
    """A registry of feature definitions.

    Features register into the graph active when their class is defined (``current_graph()``:
    the one set by ``with g.use():``, else the global ``graph``). Dependencies are late-bound;
    a missing upstream, an explicit ``FieldDep`` to a missing feature or field, or a cycle is
    reported when the feature is first planned (versions, resolves).
    """

    def __init__(self) -> None:
        self.feature_definitions_by_key: dict[FeatureKey, FeatureDefinition] = {}
        self.features_by_key: dict[FeatureKey, type[BaseFeature]] = {}
        self._plans: dict[FeatureKey, FeaturePlan] = {}
        self._field_versions: dict[tuple[int, FQFieldKey], str] = {}
        self._derived: dict[tuple[str, int, Any], Any] = {}

    def __repr__(self) -> str:
        return f"FeatureGraph({len(self.feature_definitions_by_key)} features)"

    def __contains__(self, key: object) -> bool:
        try:
            return coerce_to_feature_key(key) in self.feature_definitions_by_key
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self.feature_definitions_by_key)

    # --- registration ----------------------------------------------------------------------------
    def _invalidate(self) -> None:
        self._plans.clear()
        self._field_versions.clear()
        self._derived.clear()

    def cached(self, name: str, key: Any, compute: Callable[[], _T]) -> _T:
        """Memoise a value derived from the graph (dropped whenever the graph changes).

        The configured hash truncation length is part of the cache key: versions depend on it.
        """
        slot = (name, truncation_length(), key)
        if slot not in self._derived:
            self._derived[slot] = compute()
        return self._derived[slot]

    def add_feature(self, feature_cls: type[BaseFeature]) -> None:
        """Register a ``BaseFeature`` subclass (done automatically at class definition)."""
        defn = FeatureDefinition.from_feature_class(feature_cls)
        if self._register(defn, on_conflict="raise"):
            self.features_by_key[defn.key] = feature_cls

    def add_feature_definition(
        self, definition: FeatureDefinition, on_conflict: Literal["raise", "ignore"] = "raise"
    ) -> None:
        """Register a definition (class-less, loaded from a store, or external).

        Raises:
            DuplicateFeatureError: another definition owns the key and ``on_conflict="raise"``.
        """
        if self._register(definition, on_conflict=on_conflict):
            self.features_by_key.pop(definition.key, None)

    def _register(self, incoming: FeatureDefinition, *, on_conflict: str) -> bool:
        key = incoming.key
        existing = self.feature_definitions_by_key.get(key)
        if existing is not None:
            if incoming.is_external and not existing.is_external:
                return False
            replace = (not incoming.is_external and existing.is_external) or (
                existing.feature_class_path is not None and existing.feature_class_path == incoming.feature_class_path
            )
            if not replace:
                if on_conflict == "ignore":
                    return False
                what = "External feature" if incoming.is_external else "Feature"
                raise DuplicateFeatureError(
                    f"{what} with key '{key}' is already registered (by {existing.feature_class_path or 'a definition'}"
                    f"; now {incoming.feature_class_path or 'a definition'}). Each feature key must be unique within "
                    "a graph. Hint: rename one of the keys, or define the second one in another FeatureGraph "
                    "(`with FeatureGraph().use(): ...`)."
                )
        self.feature_definitions_by_key[key] = incoming
        self._invalidate()
        return True

    def remove_feature(self, key: Any) -> None:
        key = coerce_to_feature_key(key)
        if key not in self.feature_definitions_by_key:
            raise FeatureNotInGraphError(key, self.feature_definitions_by_key)
        del self.feature_definitions_by_key[key]
        self.features_by_key.pop(key, None)
        self._invalidate()

    # --- lookups ---------------------------------------------------------------------------------
    def get_feature_definition(self, key: Any) -> FeatureDefinition:
        """The definition for ``key``. Raises ``FeatureNotInGraphError`` (a ``KeyError``)."""
        key = coerce_to_feature_key(key)
        try:
            return self.feature_definitions_by_key[key]
        except KeyError:
            raise FeatureNotInGraphError(key, self.feature_definitions_by_key) from None

    def get_feature_class(self, key: Any) -> type[BaseFeature] | None:
        """The Python class of ``key`` if it was defined by one, else ``None``."""
        key = coerce_to_feature_key(key)
        self.get_feature_definition(key)
        return self.features_by_key.get(key)

    def list_features(
        self, projects: str | Iterable[str] | None = None, *, only_current_project: bool = True
    ) -> list[FeatureKey]:
        """Keys sorted by string; filtered to ``projects`` or, by default, the configured project."""
        if isinstance(projects, str):
            projects = [projects]
        wanted = set(projects) if projects is not None else None
        if wanted is None and only_current_project:
            configured = _configured_project()
            wanted = {configured} if configured else None
        keys = [k for k, d in self.feature_definitions_by_key.items() if wanted is None or d.project in wanted]
        return sorted(keys, key=lambda k: k.to_string())

    @property
    def has_external_features(self) -> bool:
        return any(d.is_external for d in self.feature_definitions_by_key.values())

    # --- planning --------------------------------------------------------------------------------
    def get_feature_plan(self, key: Any) -> FeaturePlan:
        """The validated plan of a feature.

        Raises:
            FeatureNotInGraphError: ``key`` is not registered.
            MetaxyMissingFeatureDependency: a dependency is not registered.
            FeatureGraphCycleError: the feature is part of a dependency cycle.
            FieldDependencyError: an explicit ``FieldDep`` names a non-dependency or a missing field.
            NoUpstreamFieldsError: automatic mapping found no parent for a field.
        """
        key = coerce_to_feature_key(key)
        plan = self._plans.get(key)
        if plan is None:
            self._check_acyclic(key)
            plan = self._build_plan(key)
            self._plans[key] = plan
        return plan

    def _check_acyclic(self, start: FeatureKey) -> None:
        stack: list[FeatureKey] = []
        on_stack: set[FeatureKey] = set()
        done: set[FeatureKey] = set()

        def visit(key: FeatureKey) -> None:
            if key in done:
                return
            if key in on_stack:
                raise FeatureGraphCycleError([*stack[stack.index(key) :], key])
            defn = self.feature_definitions_by_key.get(key)
            if defn is None:
                return
            stack.append(key)
            on_stack.add(key)
            for dep in defn.spec.deps:
                visit(dep.feature)
            stack.pop()
            on_stack.discard(key)
            done.add(key)

        visit(start)

    def _build_plan(self, key: FeatureKey) -> FeaturePlan:
        defn = self.get_feature_definition(key)
        upstream: list[FeatureDefinition] = []
        for dep in defn.spec.deps:
            up = self.feature_definitions_by_key.get(dep.feature)
            if up is None:
                raise MetaxyMissingFeatureDependency(key, dep.feature)
            upstream.append(up)
        by_key = {u.key: u for u in upstream}
        fields = tuple(
            FieldPlan(f.key, f.code_version, tuple(sorted(self._field_parents(defn, f, by_key))))
            for f in sorted(defn.spec.fields, key=lambda f: f.key.to_string())
        )
        return FeaturePlan(definition=defn, upstream=tuple(upstream), fields=fields)

    def _field_parents(
        self, defn: FeatureDefinition, field: FieldSpec, upstream: Mapping[FeatureKey, FeatureDefinition]
    ) -> set[FQFieldKey]:
        if not upstream:
            return set()
        if field.deps is SpecialFieldDep.ALL:
            return {FQFieldKey(k, f.key) for k, u in upstream.items() for f in u.spec.fields}
        if field.deps:
            parents: set[FQFieldKey] = set()
            for fdep in field.deps:
                up = upstream.get(fdep.feature)
                if up is None:
                    raise FieldDependencyError(
                        f"Field '{defn.key}.{field.key}' has a FieldDep on '{fdep.feature}', which is not a "
                        f"dependency of '{defn.key}'. Dependencies: {sorted(str(k) for k in upstream)}. "
                        f"Hint: add FeatureDep(feature='{fdep.feature}') to the spec's deps, or fix the key."
                    )
                available = [f.key for f in up.spec.fields]
                if fdep.fields is SpecialFieldDep.ALL:
                    chosen = available
                else:
                    missing = [f for f in fdep.fields if f not in available]
                    if missing:
                        raise FieldDependencyError(
                            f"Field '{defn.key}.{field.key}' depends on field(s) {[str(m) for m in missing]} of "
                            f"'{up.key}', which has only {[str(a) for a in available]}. "
                            "Hint: fix the field keys in the FieldDep."
                        )
                    chosen = list(fdep.fields)
                parents |= {FQFieldKey(up.key, f) for f in chosen}
            return parents
        parents = set()
        for dep in defn.spec.deps:
            up = upstream[dep.feature]
            matched = dep.fields_mapping.resolve(field.key, [f.key for f in up.spec.fields])
            parents |= {FQFieldKey(up.key, f) for f in matched}
        if not parents:
            raise NoUpstreamFieldsError(
                f"No upstream fields found for field '{defn.key}.{field.key}': every dependency's fields mapping "
                "selected nothing. Hint: add explicit FieldSpec(deps=[FieldDep(...)]) or change a fields_mapping."
            )
        return parents

    def validate(self) -> None:
        """Plan every feature now, raising the first definition error found."""
        for key in self.list_features(only_current_project=False):
            self.get_feature_plan(key)

    # --- static versions -------------------------------------------------------------------------
    def get_field_version(self, fq: FQFieldKey) -> str:
        """SHA-256 of ``"<feature>.<field>"`` ‖ code version ‖ parent field versions (FQ order)."""
        slot = (truncation_length(), fq)
        cached = self._field_versions.get(slot)
        if cached is not None:
            return cached
        plan = self.get_feature_plan(fq.feature)
        defn = plan.definition
        override = defn.provenance_by_field_override if defn.is_external else None
        if override is not None and fq.field.to_string() in override:
            version = override[fq.field.to_string()]
        else:
            field = next((f for f in plan.fields if f.key == fq.field), None)
            if field is None:
                raise FieldDependencyError(
                    f"Feature '{fq.feature}' has no field '{fq.field}'. Fields: "
                    f"{[f.key.to_string() for f in plan.fields]}. Hint: check the field key."
                )
            parts = [fq.to_string(), field.code_version]
            parts += [self.get_field_version(p) for p in field.parents]
            version = sha256_hex(parts)
        self._field_versions[slot] = version
        return version

    def get_feature_version_by_field(self, key: Any) -> dict[str, str]:
        """``{field key string: field version}`` for every field of the feature."""
        plan = self.get_feature_plan(key)
        return {f.key.to_string(): self.get_field_version(FQFieldKey(plan.key, f.key)) for f in plan.fields}

    def get_feature_version(self, key: Any) -> str:
        """SHA-256 over the fields sorted by key string of field key ‖ field version."""
        parts: list[str] = []
        for field_key, version in sorted(self.get_feature_version_by_field(key).items()):
            parts += [field_key, version]
        return sha256_hex(parts)

    def get_definition_version(self, key: Any) -> str:
        return self.get_feature_definition(key).feature_definition_version

    def get_project_version(self, project: str) -> str:
        """SHA-256 over the project's own (non-external) features: key ‖ definition version."""
        defs = sorted(
            (d for d in self.feature_definitions_by_key.values() if d.project == project and not d.is_external),
            key=lambda d: d.key.to_string(),
        )
        if not defs:
            return "empty"
        parts: list[str] = []
        for d in defs:
            parts += [d.key.to_string(), d.feature_definition_version]
        return sha256_hex(parts)

    @property
    def projects(self) -> list[str]:
        return sorted({d.project for d in self.feature_definitions_by_key.values() if not d.is_external})

    @property
    def project(self) -> str:
        """The configured project, else the single project of the graph."""
        configured = _configured_project()
        if configured:
            return configured
        projects = self.projects
        if len(projects) != 1:
            raise RuntimeError(
                f"Cannot tell the graph's project: it holds {projects or 'no projects'}. "
                "Hint: set `project` in metaxy.toml (or METAXY_PROJECT)."
            )
        return projects[0]

    @property
    def project_version(self) -> str:
        return self.get_project_version(self.project)

    # --- traversal -------------------------------------------------------------------------------
    def topological_sort_features(
        self, keys: Iterable[Any] | None = None, *, descending: bool = False
    ) -> list[FeatureKey]:
        """Upstream-first order (``descending=True``: dependents first); deterministic.

        DFS post-order visiting keys and deps in case-insensitive alphabetical order; deps outside
        ``keys`` are ignored.
        """
        subset = set(self.feature_definitions_by_key) if keys is None else {coerce_to_feature_key(k) for k in keys}
        order: list[FeatureKey] = []
        done: set[FeatureKey] = set()
        path: list[FeatureKey] = []

        def sort_key(k: FeatureKey) -> tuple[str, str]:
            return (k.to_string().lower(), k.to_string())

        def visit(key: FeatureKey) -> None:
            if key in done:
                return
            if key in path:
                raise FeatureGraphCycleError([*path[path.index(key) :], key])
            path.append(key)
            defn = self.feature_definitions_by_key.get(key)
            deps = [d.feature for d in defn.spec.deps] if defn else []
            for dep in sorted((d for d in deps if d in subset), key=sort_key):
                visit(dep)
            path.pop()
            done.add(key)
            order.append(key)

        for key in sorted(subset, key=sort_key):
            visit(key)
        return order[::-1] if descending else order

    def get_downstream_features(self, sources: Iterable[Any]) -> list[FeatureKey]:
        """Transitive dependents of ``sources`` in topological order, sources excluded."""
        src = {coerce_to_feature_key(s) for s in sources}
        dependents: dict[FeatureKey, set[FeatureKey]] = {}
        for key, defn in self.feature_definitions_by_key.items():
            for dep in defn.spec.deps:
                dependents.setdefault(dep.feature, set()).add(key)
        found: set[FeatureKey] = set()
        frontier = list(src)
        while frontier:
            for child in dependents.get(frontier.pop(), ()):
                if child not in found and child not in src:
                    found.add(child)
                    frontier.append(child)
        return self.topological_sort_features(found)

    # --- snapshots -------------------------------------------------------------------------------
    def to_snapshot(self, project: str | None = None) -> dict[str, dict[str, Any]]:
        """Serialise a project's own features: ``{key: {feature_spec, feature_schema, versions...}}``."""
        if project is None and len(self.projects) == 1:
            project = self.projects[0]
        out: dict[str, dict[str, Any]] = {}
        for key in self.topological_sort_features():
            d = self.feature_definitions_by_key[key]
            if d.is_external or (project is not None and d.project != project):
                continue
            out[key.to_string()] = {
                "feature_spec": d.spec.model_dump(mode="json"),
                "feature_schema": d.feature_schema,
                "metaxy_feature_version": self.get_feature_version(key),
                "metaxy_definition_version": d.feature_definition_version,
                "feature_class_path": d.feature_class_path,
                "project": d.project,
            }
        return out

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Mapping[str, Any]]) -> FeatureGraph:
        """A class-less graph rebuilt from :meth:`to_snapshot` output."""
        g = cls()
        for entry in data.values():
            g.add_feature_definition(
                FeatureDefinition.from_stored_data(
                    entry["feature_spec"], entry["feature_schema"], entry.get("feature_class_path"), entry["project"]
                )
            )
        return g

    # --- activation ------------------------------------------------------------------------------
    @classmethod
    def get_active(cls) -> FeatureGraph:
        """The graph set by ``use()`` in this context, else the global ``graph``."""
        active = _active_graph.get()
        return graph if active is None else active

    get = get_active

    @classmethod
    def set_active(cls, g: FeatureGraph | None) -> None:
        _active_graph.set(g)

    @contextlib.contextmanager
    def use(self) -> Iterator[FeatureGraph]:
        """Make this graph the active one inside the ``with`` block."""
        token = _active_graph.set(self)
        try:
            yield self
        finally:
            _active_graph.reset(token)


def _configured_project() -> str | None:
    from metaxy.models.settings import current_settings

    return current_settings().project


_active_graph: ContextVar[FeatureGraph | None] = ContextVar("metaxy_active_graph", default=None)

graph = FeatureGraph()
"""The global default graph features register into when no other graph is active."""


def current_graph() -> FeatureGraph:
    """The active feature graph."""
    return FeatureGraph.get_active()


def get_feature_by_key(key: Any) -> FeatureDefinition:
    """The definition of ``key`` in the active graph (``KeyError`` if absent)."""
    return current_graph().get_feature_definition(key)
