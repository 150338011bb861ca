"""Column schema and column lineage of a feature, as Dagster ``TableSchema`` / ``TableColumnLineage``.

Spec §12.1-§12.2. Lineage points at the *asset keys* of the upstream features, which a caller
may supply (``metaxify`` passes the keys it used for the deps, so deps and lineage agree, G10).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union, get_args, get_origin

import dagster as dg
from pydantic import AwareDatetime, NaiveDatetime

from metaxy.models import constants as c
from metaxy.models.definition import FeatureDefinition
from metaxy.models.feature import BaseFeature
from metaxy.models.graph import current_graph
from metaxy.models.keys import FeatureKey

from ._features import asset_key_for, resolve_definition

__all__ = ["build_column_lineage", "build_column_schema", "order_columns"]

UpstreamKeys = Callable[[FeatureKey], Sequence[dg.AssetKey]]

_SYSTEM_TYPES: dict[str, str] = {
    c.PROVENANCE_BY_FIELD: "dict[str, str]",
    c.DATA_VERSION_BY_FIELD: "dict[str, str]",
    c.PROVENANCE: "str",
    c.DATA_VERSION: "str",
    c.FEATURE_VERSION: "str",
    c.PROJECT_VERSION: "str",
    c.MATERIALIZATION_ID: "str",
    c.CREATED_AT: "datetime (UTC)",
    c.UPDATED_AT: "datetime (UTC)",
    c.DELETED_AT: "datetime (UTC)",
}

_SYSTEM_DESCRIPTIONS: dict[str, str] = {
    c.PROVENANCE_BY_FIELD: "Per-field provenance hashes of the sample (field key -> hash).",
    c.PROVENANCE: "Provenance hash of the sample, combining its per-field provenance.",
    c.DATA_VERSION_BY_FIELD: "Per-field data versions of the sample (defaults to the provenance).",
    c.DATA_VERSION: "Data version of the sample (defaults to its provenance).",
    c.FEATURE_VERSION: "Version of the feature definition the row was written under.",
    c.PROJECT_VERSION: "Version of the project the row was written under.",
    c.MATERIALIZATION_ID: "Id of the materialization (e.g. Dagster run) that wrote the row.",
    c.CREATED_AT: "When the sample's row was first written.",
    c.UPDATED_AT: "When the row was written.",
    c.DELETED_AT: "When the sample was soft-deleted (null while present).",
}

_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


def _type_name(annotation: Any) -> str:
    """A short readable type: ``X | None`` → ``X``, generics → ``origin[args]``."""
    if annotation is AwareDatetime:
        return "datetime (UTC)"
    if annotation is NaiveDatetime:
        return "datetime (naive)"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)] or list(args)
        return " | ".join(_type_name(a) for a in members)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]" if args else name
    if annotation is Any:
        return "Any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _json_type_name(prop: Mapping[str, Any]) -> str:
    if "anyOf" in prop:
        members = [_json_type_name(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " | ".join(members) or "None"
    kind = prop.get("type")
    if kind == "array":
        return f"list[{_json_type_name(prop.get('items', {}))}]"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"dict[str, {_json_type_name(values)}]" if isinstance(values, Mapping) else "dict[str, Any]"
    if kind == "string" and prop.get("format") == "date-time":
        return "datetime"
    if kind == "string" and prop.get("format") == "date":
        return "date"
    return _JSON_TYPES.get(str(kind), "Any")


def _feature_class(feature: Any, defn: FeatureDefinition) -> type[BaseFeature] | None:
    if isinstance(feature, type) and issubclass(feature, BaseFeature):
        return feature
    try:
        return current_graph().get_feature_class(defn.key)
    except KeyError:
        return None


def order_columns(names: Sequence[str], id_columns: Sequence[str]) -> list[str]:
    """``names`` ordered as the asset page shows them: id columns (in id order), then the other
    user columns (in the given order), then metaxy's system columns (in a fixed order)."""
    system = [col for col in _SYSTEM_TYPES if col in names] + sorted(
        n for n in names if n in c.SYSTEM_COLUMNS and n not in _SYSTEM_TYPES
    )
    ids = [col for col in id_columns if col in names]
    users = [n for n in names if n not in ids and n not in system]
    return [*ids, *users, *system]


def build_column_schema(feature: Any) -> dg.TableSchema:
    """The feature's columns as a Dagster ``TableSchema``: id columns, user columns (declaration
    order), then system columns.

    Args:
        feature: feature class, key, key string or definition. A class is used as is (so classes
            defined inside functions work); otherwise the graph's class or, for class-less
            features, the stored JSON schema.

    Returns:
        One ``TableColumn(name, type, description)`` per column.

    Raises:
        ImportError: the feature is external (another project's stub with no columns).
        FeatureNotInGraphError: the feature is not in the active graph.

    Example:
        >>> build_column_schema(MyFeature).columns[0].name  # doctest: +SKIP
        'id'
    """
    if isinstance(feature, type) and issubclass(feature, BaseFeature):
        defn: FeatureDefinition = feature.feature_definition()
    else:
        defn = resolve_definition(feature)
    if defn.is_external:
        raise ImportError(
            f"Cannot build a column schema for external feature '{defn.key}': it has no Python class "
            "or column schema here. Hint: import the module defining it (config `entrypoints`)."
        )
    columns: dict[str, dg.TableColumn] = {}
    cls = _feature_class(feature, defn)
    if cls is not None:
        for name, info in cls.model_fields.items():
            columns[name] = dg.TableColumn(
                name=name,
                type=_SYSTEM_TYPES.get(name) or _type_name(info.annotation),
                description=info.description or _SYSTEM_DESCRIPTIONS.get(name),
            )
    else:
        for name, prop in defn.feature_schema.get("properties", {}).items():
            columns[name] = dg.TableColumn(
                name=name,
                type=_SYSTEM_TYPES.get(name) or _json_type_name(prop),
                description=prop.get("description") or _SYSTEM_DESCRIPTIONS.get(name),
            )
        for name, type_name in _SYSTEM_TYPES.items():
            columns.setdefault(name, dg.TableColumn(name=name, type=type_name, description=_SYSTEM_DESCRIPTIONS[name]))
    return dg.TableSchema(columns=[columns[n] for n in order_columns(list(columns), defn.id_columns)])


def build_column_lineage(
    feature: Any,
    feature_spec: Any = None,
    *,
    upstream_keys: UpstreamKeys | None = None,
) -> dg.TableColumnLineage | None:
    """Which upstream columns each column of the feature comes from (spec §12.2).

    Id columns follow the dep's lineage (identity: the id columns; aggregation: the ``on``
    columns; expansion: only the ``on`` parent ids), renames trace to the old name, same-named
    columns pass through, and the four versioning system columns depend on every upstream.

    Args:
        feature: feature class, key, key string or definition.
        feature_spec: unused; accepted for compatibility (the spec comes from the graph).
        upstream_keys: asset keys of an upstream feature (default: its default asset key, §2).

    Returns:
        The lineage sorted by column, or None for a root feature (or when nothing maps).

    Raises:
        FeatureNotInGraphError: the feature or an upstream is not in the active graph.
    """
    del feature_spec
    graph = current_graph()
    defn = resolve_definition(feature, graph)
    if not defn.spec.deps:
        return None
    keys_of = upstream_keys or (lambda k: [asset_key_for(graph.get_feature_definition(k).spec)])
    down_cols = _columns_of(feature, defn)
    deps_by_column: dict[str, list[dg.TableColumnDep]] = {}

    def add(column: str, asset_keys: Sequence[dg.AssetKey], source: str) -> None:
        for key in asset_keys:
            dep = dg.TableColumnDep(asset_key=key, column_name=source)
            if dep not in deps_by_column.setdefault(column, []):
                deps_by_column[column].append(dep)

    for dep in defn.spec.deps:
        up = graph.get_feature_definition(dep.feature)
        keys = list(keys_of(dep.feature))
        for column, source in _dep_column_sources(defn, down_cols, up, dep).items():
            add(column, keys, source)
        for column in c.VERSIONING_COLUMNS:
            add(column, keys, column)
    if not deps_by_column:
        return None
    return dg.TableColumnLineage(deps_by_column={k: deps_by_column[k] for k in sorted(deps_by_column)})


def _columns_of(feature: Any, defn: FeatureDefinition) -> list[str]:
    cls = _feature_class(feature, defn)
    if cls is not None:
        return [n for n in cls.model_fields if n not in c.SYSTEM_COLUMNS]
    return defn.columns


def _dep_column_sources(
    defn: FeatureDefinition, down_cols: Sequence[str], up: FeatureDefinition, dep: Any
) -> dict[str, str]:
    """``{downstream column: upstream column}`` for one dep (system columns excluded)."""
    up_cols = set(up.columns) | set(up.id_columns)
    up_ids = set(up.id_columns)
    rename: dict[str, str] = dict(dep.rename or {})
    source_of = {new: old for old, new in rename.items()}
    lineage = dep.lineage
    sources: dict[str, str] = {}
    if lineage.is_identity:
        for col in defn.id_columns:
            src = source_of.get(col, col)
            if src in up_ids:
                sources[col] = src
    else:
        on = lineage.on if lineage.on is not None else defn.id_columns
        for col in on:
            src = source_of.get(col, col)
            if src in up_cols and col in (*down_cols, *defn.id_columns):
                sources[col] = src
    selected = set(dep.select) if dep.select is not None else None
    for old, new in rename.items():
        if new in down_cols and old in up_cols and new not in sources and (selected is None or new in selected):
            sources[new] = old
    renamed_away = set(rename) - set(rename.values())
    for col in down_cols:
        if col in sources or col in source_of or col in c.SYSTEM_COLUMNS or col in defn.id_columns:
            continue
        if col in up_cols and col not in renamed_away and (selected is None or col in selected):
            sources[col] = col
    return sources
