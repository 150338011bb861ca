"""Static views of a feature graph: descriptions, renderings (text, Mermaid, Graphviz) and diffs.

Everything here works from definitions alone (a live graph or one loaded from a pushed
snapshot); nothing reads metadata rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from metaxy.errors import FeatureNotInGraphError
from metaxy.models.graph import FeatureGraph
from metaxy.models.keys import FeatureKey, FQFieldKey, coerce_to_feature_key

__all__ = [
    "FeatureChange",
    "FieldChange",
    "GraphDiff",
    "RenderOptions",
    "describe_feature",
    "describe_graph",
    "diff_graphs",
    "focus",
    "render_graph",
]

RenderFormat = Literal["terminal", "mermaid", "graphviz"]


def _short(version: str, length: int | None) -> str:
    return version if not length else version[:length]


def describe_feature(graph: FeatureGraph, key: Any) -> dict[str, Any]:
    """A feature's spec in plain data: versions, fields with their versions and upstream fields, deps, schema.

    Raises:
        FeatureNotInGraphError: ``key`` is not in ``graph``.
        GraphError: the feature cannot be planned (missing upstream, cycle ...).
    """
    key = coerce_to_feature_key(key)
    defn = graph.get_feature_definition(key)
    plan = graph.get_feature_plan(key)
    fields = []
    for f in plan.fields:
        fields.append(
            {
                "key": f.key.to_string(),
                "code_version": f.code_version,
                "version": graph.get_field_version(FQFieldKey(key, f.key)),
                "upstream": [p.to_string() for p in f.parents],
            }
        )
    deps = []
    for dep in defn.spec.deps:
        deps.append(
            {
                "feature": dep.feature.to_string(),
                "lineage": dep.lineage.type,
                "on": list(dep.lineage.on) if dep.lineage.on else None,
                "optional": dep.optional,
                "select": list(dep.select) if dep.select is not None else None,
                "rename": dict(dep.rename) if dep.rename else None,
                "filters": list(dep.filters) if dep.filters else None,
            }
        )
    props = defn.feature_schema.get("properties", {}) if isinstance(defn.feature_schema, dict) else {}
    schema = {name: _schema_type(p) for name, p in props.items()}
    return {
        "key": key.to_string(),
        "project": defn.project,
        "description": defn.spec.description,
        "version": graph.get_feature_version(key),
        "definition_version": defn.feature_definition_version,
        "id_columns": list(defn.id_columns),
        "table": defn.table_name,
        "external": defn.is_external,
        "class_path": defn.feature_class_path,
        "fields": fields,
        "deps": deps,
        "dependents": [
            k.to_string()
            for k in graph.list_features(only_current_project=False)
            if any(d.feature == key for d in graph.get_feature_definition(k).spec.deps)
        ],
        "schema": schema,
    }


def _schema_type(prop: Any) -> str:
    if not isinstance(prop, dict):
        return "?"
    if "type" in prop:
        kind = prop["type"]
        return "|".join(kind) if isinstance(kind, list) else str(kind)
    if "anyOf" in prop:
        return "|".join(_schema_type(p) for p in prop["anyOf"])
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    return "any"


def _depths(graph: FeatureGraph, keys: Sequence[FeatureKey]) -> dict[FeatureKey, int]:
    chosen = set(keys)
    depth: dict[FeatureKey, int] = {}
    for key in graph.topological_sort_features(keys):
        ups = [d.feature for d in graph.get_feature_definition(key).spec.deps if d.feature in chosen]
        depth[key] = 1 + max((depth[u] for u in ups), default=0)
    return depth


def describe_graph(graph: FeatureGraph, keys: Sequence[FeatureKey]) -> dict[str, Any]:
    """Feature count, depth (longest dependency chain), roots, leaves and features per project."""
    chosen = set(keys)
    depth = _depths(graph, keys)
    has_dependents = {
        d.feature for k in chosen for d in graph.get_feature_definition(k).spec.deps if d.feature in chosen
    }
    projects: dict[str, int] = {}
    for k in chosen:
        p = graph.get_feature_definition(k).project
        projects[p] = projects.get(p, 0) + 1
    ordered = sorted(chosen, key=str)
    return {
        "feature_count": len(chosen),
        "depth": max(depth.values(), default=0),
        "roots": [
            k.to_string()
            for k in ordered
            if not any(d.feature in chosen for d in graph.get_feature_definition(k).spec.deps)
        ],
        "leaves": [k.to_string() for k in ordered if k not in has_dependents],
        "projects": dict(sorted(projects.items())),
    }


def focus(
    graph: FeatureGraph, keys: Sequence[FeatureKey], feature: Any, up: int | None, down: int | None
) -> list[FeatureKey]:
    """``feature`` plus its upstream features ``up`` levels deep and dependents ``down`` levels deep.

    ``None`` means unlimited; ``0`` none in that direction. The result is limited to ``keys``.

    Raises:
        FeatureNotInGraphError: ``feature`` is not among ``keys``.
    """
    center = coerce_to_feature_key(feature)
    chosen = set(keys)
    if center not in chosen:
        raise FeatureNotInGraphError(center, chosen)
    parents = {k: [d.feature for d in graph.get_feature_definition(k).spec.deps if d.feature in chosen] for k in chosen}
    children: dict[FeatureKey, list[FeatureKey]] = {k: [] for k in chosen}
    for k, ps in parents.items():
        for p in ps:
            children[p].append(k)
    found = {center}
    for links, limit in ((parents, up), (children, down)):
        frontier, level = [center], 0
        while frontier and (limit is None or level < limit):
            level += 1
            frontier = [n for k in frontier for n in links[k] if n not in found]
            found.update(frontier)
    return [k for k in graph.topological_sort_features(found)]


@dataclass(frozen=True)
class RenderOptions:
    """What a rendered graph shows."""

    show_fields: bool = True
    show_feature_versions: bool = True
    show_field_versions: bool = False
    show_code_versions: bool = False
    show_projects: bool = False
    hash_length: int | None = 8
    direction: Literal["TB", "LR"] = "TB"
    title: str | None = None


def _edges(graph: FeatureGraph, keys: Sequence[FeatureKey]) -> list[tuple[FeatureKey, FeatureKey]]:
    chosen = set(keys)
    return [(d.feature, k) for k in keys for d in graph.get_feature_definition(k).spec.deps if d.feature in chosen]


def _node_lines(graph: FeatureGraph, key: FeatureKey, opts: RenderOptions) -> list[str]:
    head = key.to_string()
    if opts.show_feature_versions:
        head += f" ({_short(graph.get_feature_version(key), opts.hash_length)})"
    if opts.show_projects:
        head += f" [{graph.get_feature_definition(key).project}]"
    lines = [head]
    if opts.show_fields:
        plan = graph.get_feature_plan(key)
        for f in plan.fields:
            text = f"  - {f.key.to_string()}"
            extra = []
            if opts.show_field_versions:
                extra.append(_short(graph.get_field_version(FQFieldKey(key, f.key)), opts.hash_length))
            if opts.show_code_versions:
                extra.append(f"code {f.code_version}")
            if extra:
                text += f" ({', '.join(extra)})"
            lines.append(text)
    return lines


def _node_id(key: FeatureKey) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key.to_string())


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_graph(
    graph: FeatureGraph, keys: Sequence[FeatureKey], fmt: RenderFormat = "terminal", opts: RenderOptions | None = None
) -> str:
    """The graph of ``keys`` as text: an indented tree (``terminal``), Mermaid or Graphviz DOT.

    The output is deterministic (topological order, alphabetical ties), so it can be diffed and
    snapshot-tested.
    """
    opts = opts or RenderOptions()
    ordered = graph.topological_sort_features(keys)
    edges = _edges(graph, ordered)
    if fmt == "mermaid":
        out = []
        if opts.title:
            out += ["---", f"title: {opts.title}", "---"]
        out.append(f"flowchart {opts.direction}")
        for key in ordered:
            label = "<br/>".join(line.strip() for line in _node_lines(graph, key, opts))
            out.append(f'    {_node_id(key)}["{label.replace(chr(34), "#quot;")}"]')
        out += [f"    {_node_id(a)} --> {_node_id(b)}" for a, b in edges]
        return "\n".join(out) + "\n"
    if fmt == "graphviz":
        out = ["digraph metaxy {", f"    rankdir={opts.direction};", "    node [shape=box];"]
        if opts.title:
            out.append(f'    label="{_quote(opts.title)}";')
        for key in ordered:
            label = "\\l".join(_quote(line) for line in _node_lines(graph, key, opts)) + "\\l"
            out.append(f'    "{_quote(key.to_string())}" [label="{label}"];')
        out += [f'    "{_quote(a.to_string())}" -> "{_quote(b.to_string())}";' for a, b in edges]
        out.append("}")
        return "\n".join(out) + "\n"
    out = [opts.title] if opts.title else []
    for key in ordered:
        lines = _node_lines(graph, key, opts)
        ups = sorted(a.to_string() for a, b in edges if b == key)
        out.append(lines[0] + (f" <- {', '.join(ups)}" if ups else ""))
        out += lines[1:]
    return "\n".join(out) + "\n"


# --- diffs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """A field added, removed or changed between two graphs (versions are ``None`` where absent)."""

    field: str
    status: Literal["added", "removed", "changed"]
    old_version: str | None = None
    new_version: str | None = None
    old_code_version: str | None = None
    new_code_version: str | None = None


@dataclass(frozen=True)
class FeatureChange:
    """A feature whose version changed, with the fields that changed."""

    feature: str
    old_version: str
    new_version: str
    fields: list[FieldChange] = field(default_factory=list)


@dataclass(frozen=True)
class GraphDiff:
    """Features added, removed and changed from ``old`` to ``new``."""

    added: list[str]
    removed: list[str]
    changed: list[FeatureChange]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": [
                {
                    "feature": c.feature,
                    "old_version": c.old_version,
                    "new_version": c.new_version,
                    "fields": [f.__dict__ for f in c.fields],
                }
                for c in self.changed
            ],
        }


def _field_versions(graph: FeatureGraph, key: FeatureKey) -> dict[str, tuple[str, str]]:
    plan = graph.get_feature_plan(key)
    return {f.key.to_string(): (graph.get_field_version(FQFieldKey(key, f.key)), f.code_version) for f in plan.fields}


def diff_graphs(old: FeatureGraph, new: FeatureGraph, keys: Iterable[FeatureKey] | None = None) -> GraphDiff:
    """Compare two graphs feature by feature (optionally limited to ``keys``)."""
    old_keys = set(old.list_features(only_current_project=False))
    new_keys = set(new.list_features(only_current_project=False))
    if keys is not None:
        wanted = set(keys)
        old_keys &= wanted
        new_keys &= wanted
    changed = []
    for key in sorted(old_keys & new_keys, key=str):
        before, after = old.get_feature_version(key), new.get_feature_version(key)
        if before == after:
            continue
        fo, fn = _field_versions(old, key), _field_versions(new, key)
        fields = [
            FieldChange(f, "added", new_version=fn[f][0], new_code_version=fn[f][1])
            for f in sorted(fn.keys() - fo.keys())
        ]
        fields += [
            FieldChange(f, "removed", old_version=fo[f][0], old_code_version=fo[f][1])
            for f in sorted(fo.keys() - fn.keys())
        ]
        fields += [
            FieldChange(f, "changed", fo[f][0], fn[f][0], fo[f][1], fn[f][1])
            for f in sorted(fo.keys() & fn.keys())
            if fo[f] != fn[f]
        ]
        changed.append(FeatureChange(key.to_string(), before, after, sorted(fields, key=lambda c: c.field)))
    return GraphDiff(
        added=sorted(k.to_string() for k in new_keys - old_keys),
        removed=sorted(k.to_string() for k in old_keys - new_keys),
        changed=changed,
    )
