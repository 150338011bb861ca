"""``metaxify``: enrich Dagster asset definitions with what their Metaxy feature knows (spec §3).

For every asset spec linked to a feature (``metadata={"metaxy/feature": ...}`` or
``metaxify(feature=...)``) it sets the key, the feature's upstream deps, kinds, tags, code
version, description, column schema and lineage, and the feature's ``dagster/attributes``.

Feature deps order execution exactly like hand-written ``deps=[...]`` (G20): each injected dep
becomes a ``Nothing`` input of the asset's op (of every op of a graph-backed asset), mapped to the
upstream asset key. Only public Dagster constructors and ``with_attributes(asset_key_replacements=...)``
are used (G17).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import dagster as dg

from metaxy.models.definition import FeatureDefinition
from metaxy.models.feature_spec import FeatureSpec
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import CoercibleToFeatureKey, FeatureKey, coerce_to_feature_key

from ._features import (
    asset_key_for,
    dagster_attributes,
    feature_key_from_metadata,
    feature_metadata,
    register_asset_key,
    slice_from_metadata,
    slice_key_suffix,
    upstream_asset_keys,
)
from ._schema import build_column_lineage, build_column_schema, order_columns
from .constants import (
    DAGSTER_COLUMN_LINEAGE_METADATA_KEY,
    DAGSTER_COLUMN_SCHEMA_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
    DAGSTER_METAXY_KIND,
    DAGSTER_METAXY_PROJECT_TAG_KEY,
    METAXY_DAGSTER_METADATA_KEY,
)
from .errors import MetaxyDagsterError

__all__ = ["metaxify"]

# Attributes of ``dagster/attributes`` merged with metaxy's values (G6); the others replace.
_MERGED = frozenset({"tags", "metadata", "kinds", "deps", "code_version", "asset_key"})
_REPLACED = frozenset(
    {
        "group_name",
        "owners",
        "description",
        "automation_condition",
        "freshness_policy",
        "legacy_freshness_policy",
        "partitions_def",
        "skippable",
        "is_virtual",
    }
)
_INPUT_NAME = re.compile(r"[^A-Za-z0-9_]")
_Enrichable = TypeVar("_Enrichable", dg.AssetsDefinition, dg.AssetSpec)


class _Metaxify:
    """Enrich Dagster assets with their Metaxy feature: key, deps, metadata, schema, lineage.

    Works with and without parentheses, on ``@dg.asset``, ``@dg.multi_asset`` (incl.
    ``can_subset=True``, mixed Metaxy / non-Metaxy specs and check specs), graph-backed assets
    (``dg.AssetsDefinition.from_graph``), bare ``dg.AssetSpec`` objects and lists of these.

    Args:
        feature: the feature (class, key string or ``FeatureKey``) when the asset has no
            ``"metaxy/feature"`` metadata; it must agree with that metadata when both are given.
            Only for objects with a single asset.
        key: the asset key (default: the feature's key, §2). Single-asset objects only.
        key_prefix: parts prepended to every key (and to deps on features not yet metaxified).
        inject_metaxy_kind: add the ``metaxy`` kind.
        inject_code_version: append ``metaxy:<feature version>`` to the code version (the feature
            version changes with the feature's fields *and* every upstream field it depends on, so
            Dagster's "Unsynced" follows metaxy's versions).
        set_description: use the feature's docstring when the asset has no description.
        inject_column_schema: set ``dagster/column_schema`` from the feature's columns.
        inject_column_lineage: set ``dagster/column_lineage`` from the feature's deps.

    Returns:
        Called on an asset (``@metaxify``), the enriched asset; called with options only
        (``@metaxify(...)``), a decorator.

    Raises:
        ValueError: both ``key`` and ``key_prefix``; ``key`` on a multi-asset; ``feature`` on a
            multi-asset; a ``feature`` contradicting ``"metaxy/feature"``; two assets of one object
            getting the same key; ``dagster/attributes`` not a dict or naming unknown attributes.
        FeatureNotInGraphError: the feature is not in the active feature graph.
        TypeError: the object is not an ``AssetsDefinition`` or ``AssetSpec``.

    Example:
        >>> import dagster as dg
        >>> import metaxy.ext.dagster as mxd
        >>> @mxd.metaxify(feature="audio/embeddings")  # doctest: +SKIP
        ... @dg.asset
        ... def audio_embeddings(): ...
    """

    _feature: FeatureKey | None
    _key: dg.AssetKey | None
    _prefix: tuple[str, ...]

    def __new__(cls, obj: Any = None, /, **options: Any) -> Any:
        self = super().__new__(cls)
        self._configure(**options)
        return self if obj is None else self(obj)

    def __init__(self, obj: Any = None, /, **options: Any) -> None:
        """Configured in ``__new__`` (so that ``metaxify(asset)`` returns the enriched asset)."""

    # ``__new__`` returns the enriched object, not an instance: mypy cannot express that for a
    # class, so type checkers see the overloaded function ``metaxify`` at the end of this module.

    def _configure(
        self,
        *,
        feature: Any = None,
        key: Any = None,
        key_prefix: Any = None,
        inject_metaxy_kind: bool = True,
        inject_code_version: bool = True,
        set_description: bool = True,
        inject_column_schema: bool = True,
        inject_column_lineage: bool = True,
    ) -> None:
        if key is not None and key_prefix is not None:
            raise MetaxyDagsterError(
                f"Cannot specify both `key` ({key!r}) and `key_prefix` ({key_prefix!r}). "
                "Hint: pass the full key, or only a prefix for the feature's default key."
            )
        self._feature = _coerce_feature(feature)
        self._key = dg.AssetKey.from_coercible(key) if key is not None else None
        self._prefix = _coerce_prefix(key_prefix)
        self.inject_metaxy_kind = inject_metaxy_kind
        self.inject_code_version = inject_code_version
        self.set_description = set_description
        self.inject_column_schema = inject_column_schema
        self.inject_column_lineage = inject_column_lineage

    # --- entry point ---------------------------------------------------------------------------
    @overload
    def __call__(self, obj: _Enrichable) -> _Enrichable: ...
    @overload
    def __call__(self, obj: list[_Enrichable]) -> list[_Enrichable]: ...
    @overload
    def __call__(self, obj: tuple[_Enrichable, ...]) -> tuple[_Enrichable, ...]: ...
    def __call__(self, obj: Any) -> Any:
        """Enrich an ``AssetsDefinition``, an ``AssetSpec``, or each item of a list of them."""
        if isinstance(obj, dg.AssetsDefinition):
            return self._assets_def(obj)
        if isinstance(obj, dg.AssetSpec):
            spec, feature = self._enrich(obj, current_graph())
            self._register([(spec, feature)])
            return spec
        if isinstance(obj, list | tuple):
            return type(obj)(self(item) for item in obj)
        raise TypeError(
            f"metaxify cannot enrich a {type(obj).__name__} ({obj!r}). Hint: apply @metaxify above @dg.asset, "
            "@dg.multi_asset or an AssetsDefinition.from_graph(...) result, or pass a dg.AssetSpec."
        )

    def _register(self, enriched: Iterable[tuple[dg.AssetSpec, FeatureKey | None]]) -> None:
        graph = current_graph()
        for spec, feature in enriched:
            if feature is not None:
                register_asset_key(feature, spec.key, self._prefix, graph)

    # --- AssetsDefinition ----------------------------------------------------------------------
    def _assets_def(self, assets_def: dg.AssetsDefinition) -> dg.AssetsDefinition:
        specs = list(assets_def.specs)
        name = assets_def.node_def.name if assets_def.computation is not None else "external assets"
        if self._key is not None and len(specs) > 1:
            raise MetaxyDagsterError(
                f"Cannot use `key` argument with multi-asset `{name}` that produces {len(specs)} outputs "
                f"({', '.join(s.key.to_user_string() for s in specs)}). Hint: use `key_prefix`, or set keys per spec."
            )
        if self._feature is not None and len(specs) > 1:
            raise MetaxyDagsterError(
                f"Cannot use `feature` argument ({self._feature}) with multi-asset `{name}` that produces "
                f"{len(specs)} outputs. Hint: set metadata={{'{DAGSTER_METAXY_FEATURE_METADATA_KEY}': ...}} on each "
                "AssetSpec / AssetOut instead."
            )
        graph = current_graph()
        enriched = [self._enrich(spec, graph) for spec in specs]
        new_keys = [spec.key for spec, _ in enriched]
        dupes = sorted({k.to_user_string() for k in new_keys if new_keys.count(k) > 1})
        if dupes:
            raise MetaxyDagsterError(
                f"metaxify would give several assets of `{name}` the same key: {dupes}. Hint: give each asset "
                "of one feature its own 'metaxy/partition' slice (the slice becomes a key suffix) or an explicit key."
            )
        key_map = {old.key: new.key for old, (new, _) in zip(specs, enriched, strict=True) if old.key != new.key}
        new_specs = [_remap_deps(spec, key_map) for spec, _ in enriched]
        moved = assets_def.with_attributes(asset_key_replacements=key_map) if key_map else assets_def
        result = _replace_specs(moved, new_specs)
        self._register(enriched)
        return result

    # --- one spec ------------------------------------------------------------------------------
    def _enrich(self, spec: dg.AssetSpec, graph: FeatureGraph) -> tuple[dg.AssetSpec, FeatureKey | None]:
        feature = self._feature_of(spec)
        if feature is None:
            if self._prefix:
                return spec.replace_attributes(key=dg.AssetKey([*self._prefix, *spec.key.path])), None
            return spec, None
        defn = graph.get_feature_definition(feature)
        attrs = dagster_attributes(defn.spec)
        _check_attribute_names(defn.spec, attrs)
        upstream = {dep.feature: upstream_asset_keys(dep.feature, self._prefix, graph) for dep in defn.spec.deps}
        metadata = {**spec.metadata, **_as_dict(attrs.get("metadata"), "metadata", defn.spec)}
        metadata.pop(DAGSTER_METAXY_INFO_METADATA_KEY, None)  # the published blob; short entries replace it
        metadata.update(feature_metadata(defn))
        self._column_metadata(metadata, defn, upstream)
        kinds = {*spec.kinds, *(attrs.get("kinds") or ())}
        if self.inject_metaxy_kind:
            kinds.add(DAGSTER_METAXY_KIND)
        replaced: dict[str, Any] = {name: attrs[name] for name in _REPLACED if name in attrs}
        description = replaced.pop("description", None) or spec.description
        if description is None and self.set_description:
            description = defn.spec.description or defn.feature_schema.get("description")
        code_version = self._code_version(spec, attrs, graph.get_feature_version(defn.key))
        optional: dict[str, Any] = {"description": description, "code_version": code_version}
        new = spec.replace_attributes(
            key=self._asset_key(defn.spec, metadata),
            deps=_merge_deps(
                [dg.AssetDep(k) for keys in upstream.values() for k in keys],
                spec.deps,
                [dg.AssetDep.from_coercible(d) for d in attrs.get("deps") or ()],
            ),
            metadata=metadata,
            kinds=kinds,
            tags=_tags(spec, attrs, defn),
            **replaced,
            **{k: v for k, v in optional.items() if v is not None},
        )
        return new, defn.key

    def _feature_of(self, spec: dg.AssetSpec) -> FeatureKey | None:
        from_metadata = feature_key_from_metadata(spec.metadata)
        if self._feature is not None and from_metadata is not None and self._feature != from_metadata:
            raise MetaxyDagsterError(
                f"metaxify(feature='{self._feature}') contradicts the asset's metadata "
                f"'{DAGSTER_METAXY_FEATURE_METADATA_KEY}' = '{from_metadata}' ({spec.key.to_user_string()}). "
                "Hint: name the feature in one place only."
            )
        return self._feature or from_metadata

    def _asset_key(self, spec: FeatureSpec, metadata: Mapping[str, Any]) -> dg.AssetKey:
        if self._key is not None:
            return self._key
        path = [*self._prefix, *asset_key_for(spec).path]
        slice_filter = slice_from_metadata(metadata)
        if slice_filter:
            path.append(slice_key_suffix(slice_filter))
        return dg.AssetKey(path)

    def _code_version(self, spec: dg.AssetSpec, attrs: Mapping[str, Any], feature_version: str) -> str | None:
        """The asset's code version with ``metaxy:<feature version>`` appended.

        The *feature* version (not the feature's own code version) folds in the versions of every
        upstream field the feature depends on, so a code change upstream gives exactly the assets
        whose samples metaxy recomputes a new Dagster code version ("Unsynced: code version").
        """
        parts: list[str] = []
        for value in (spec.code_version, attrs.get("code_version")):
            for part in str(value).split(",") if value else ():
                if part not in parts:
                    parts.append(part)
        if self.inject_code_version:
            own = f"metaxy:{feature_version}"
            parts = [p for p in parts if not p.startswith("metaxy:")] + [own]
        return ",".join(parts) or None

    def _column_metadata(
        self, metadata: dict[str, Any], defn: FeatureDefinition, upstream: Mapping[FeatureKey, list[dg.AssetKey]]
    ) -> None:
        if self.inject_column_schema:
            given = {col.name: col for col in _schema_columns(metadata.get(DAGSTER_COLUMN_SCHEMA_METADATA_KEY))}
            columns: dict[str, dg.TableColumn] = {}  # the feature's columns, then the user's; the user's win
            if not defn.is_external:
                columns = {col.name: given.get(col.name, col) for col in build_column_schema(defn).columns}
            for name, column in given.items():
                columns.setdefault(name, column)
            if columns:
                order = order_columns([*columns], defn.id_columns)  # id → user → system columns
                metadata[DAGSTER_COLUMN_SCHEMA_METADATA_KEY] = dg.TableSchema(columns=[columns[n] for n in order])
        if self.inject_column_lineage:
            user = _lineage_deps(metadata.get(DAGSTER_COLUMN_LINEAGE_METADATA_KEY))
            merged: dict[str, list[dg.TableColumnDep]] = {}
            if defn.spec.deps and not defn.is_external:
                lineage = build_column_lineage(defn, upstream_keys=lambda k: upstream[k])
                merged = {col: list(deps) for col, deps in (lineage.deps_by_column if lineage else {}).items()}
            for col, deps in user.items():
                merged.setdefault(col, [])
                merged[col] += [d for d in deps if d not in merged[col]]
            if merged:
                metadata[DAGSTER_COLUMN_LINEAGE_METADATA_KEY] = dg.TableColumnLineage(
                    deps_by_column={col: merged[col] for col in sorted(merged)}
                )


# --- helpers -----------------------------------------------------------------------------------


def _coerce_feature(feature: Any) -> FeatureKey | None:
    if feature is None:
        return None
    try:
        return coerce_to_feature_key(feature)
    except (TypeError, ValueError) as exc:
        raise MetaxyDagsterError(
            f"metaxify(feature={feature!r}): not a feature. {exc} Hint: pass a feature class, a key string "
            "such as 'audio/embeddings', or a FeatureKey."
        ) from exc


def _coerce_prefix(prefix: Any) -> tuple[str, ...]:
    if prefix is None:
        return ()
    if isinstance(prefix, str):
        return (prefix,)
    if isinstance(prefix, dg.AssetKey):
        return tuple(prefix.path)
    return tuple(str(p) for p in prefix)


def _check_attribute_names(spec: FeatureSpec, attrs: Mapping[str, Any]) -> None:
    unknown = sorted(set(attrs) - _MERGED - _REPLACED)
    if unknown:
        raise MetaxyDagsterError(
            f"Feature '{spec.key}': metadata['{METAXY_DAGSTER_METADATA_KEY}'] has unknown attributes {unknown}. "
            f"Hint: use AssetSpec attributes: {', '.join(sorted(_MERGED | _REPLACED))}."
        )


def _as_dict(value: Any, name: str, spec: FeatureSpec) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MetaxyDagsterError(
            f"Feature '{spec.key}': '{METAXY_DAGSTER_METADATA_KEY}.{name}' is {type(value).__name__}, expected dict. "
            f"Hint: write {name}={{...}}."
        )
    return dict(value)


def _tags(spec: dg.AssetSpec, attrs: Mapping[str, Any], defn: FeatureDefinition) -> dict[str, str]:
    """The asset's tags, the feature's ``tags`` attribute, then metaxy's (which always win, G6)."""
    tags = {
        **spec.tags,
        **_as_dict(attrs.get("tags"), "tags", defn.spec),
        DAGSTER_METAXY_PROJECT_TAG_KEY: defn.project[:63],
        DAGSTER_METAXY_FEATURE_METADATA_KEY: defn.key.table_name[:63],  # tag values: [A-Za-z0-9_.-]{0,63}
    }
    return {k: v for k, v in tags.items() if not k.startswith("dagster/kind/")}  # kinds are passed separately


def _merge_deps(*groups: Iterable[dg.AssetDep]) -> list[dg.AssetDep]:
    """Deps keyed by asset key: the first group's order first; later groups replace same-key deps."""
    merged: dict[dg.AssetKey, dg.AssetDep] = {}
    for group in groups:
        for dep in group:
            merged[dep.asset_key] = dep
    return list(merged.values())


def _remap_deps(spec: dg.AssetSpec, key_map: Mapping[dg.AssetKey, dg.AssetKey]) -> dg.AssetSpec:
    if not key_map or not any(d.asset_key in key_map for d in spec.deps):
        return spec
    deps = [d._replace(asset_key=key_map.get(d.asset_key, d.asset_key)) for d in spec.deps]
    return spec.replace_attributes(deps=deps)


def _schema_columns(value: Any) -> list[dg.TableColumn]:
    value = getattr(value, "schema", value)  # TableSchemaMetadataValue → TableSchema
    return list(value.columns) if isinstance(value, dg.TableSchema) else []


def _lineage_deps(value: Any) -> dict[str, list[dg.TableColumnDep]]:
    value = getattr(value, "column_lineage", value)  # TableColumnLineageMetadataValue → TableColumnLineage
    if isinstance(value, dg.TableColumnLineage):
        return {col: list(deps) for col, deps in value.deps_by_column.items()}
    return {}


# --- rebuilding the definition -----------------------------------------------------------------


def _replace_specs(assets_def: dg.AssetsDefinition, specs: Sequence[dg.AssetSpec]) -> dg.AssetsDefinition:
    """``assets_def`` with ``specs`` (same keys), each new dep an op input so it orders execution."""
    by_key = {spec.key: spec for spec in specs}
    if assets_def.computation is None:
        return assets_def.map_asset_specs(lambda s: by_key[s.key])
    inputs = dict(assets_def.node_keys_by_input_name)
    produced = set(assets_def.node_keys_by_output_name.values())
    needed: list[dg.AssetKey] = []
    for spec in specs:
        for dep in spec.deps:
            if dep.asset_key not in produced and dep.asset_key not in inputs.values() and dep.asset_key not in needed:
                needed.append(dep.asset_key)
    node_def = assets_def.node_def
    names: dict[str, dg.AssetKey] = {}
    if needed:
        taken = _all_input_names(node_def)
        for key in needed:
            base = _INPUT_NAME.sub("_", "__".join(key.path))
            name, i = base, 2
            while name in taken or name in names:
                name, i = f"{base}_{i}", i + 1
            names[name] = key
        inputs.update(names)
    # In a subset run of a subsettable graph, Dagster restricts every op to the outputs the subset
    # needs while still requiring the non-optional ones; ops yielding only their selected outputs
    # (``generate_outputs``) need every output optional.
    optional_outputs = assets_def.can_subset and isinstance(node_def, dg.GraphDefinition)
    if names or optional_outputs:
        node_def = _rebuilt(node_def, list(names), optional_outputs)
    optional: dict[str, Any] = {}
    if assets_def.is_external:  # observable assets: keep their execution type
        optional["execution_type"] = assets_def.execution_type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        return dg.AssetsDefinition(
            keys_by_input_name=inputs,
            keys_by_output_name=assets_def.node_keys_by_output_name,
            node_def=node_def,
            selected_asset_keys=assets_def.keys,
            can_subset=assets_def.can_subset,
            resource_defs=assets_def.resource_defs,
            hook_defs=assets_def.hook_defs,
            backfill_policy=assets_def.backfill_policy,
            check_specs_by_output_name=assets_def.node_check_specs_by_output_name,
            selected_asset_check_keys=assets_def.check_keys,
            is_subset=assets_def.is_subset,
            specs=[by_key[spec.key] for spec in assets_def.specs],
            **optional,
        )


def _all_input_names(node_def: dg.NodeDefinition) -> set[str]:
    names = {d.name for d in node_def.input_defs}
    if isinstance(node_def, dg.GraphDefinition):
        for child in node_def.node_defs:
            names |= _all_input_names(child)
    return names


def _rebuilt(node_def: dg.NodeDefinition, names: Sequence[str], optional_outputs: bool) -> dg.NodeDefinition:
    """The node with extra ``Nothing`` inputs (for a graph, every op inside waits on them) and,
    if asked, every op output optional."""
    if isinstance(node_def, dg.OpDefinition):
        outs = node_def.outs
        if optional_outputs:
            outs = {
                name: dg.Out(
                    dagster_type=out.dagster_type,
                    description=out.description,
                    is_required=False,
                    io_manager_key=out.io_manager_key,
                    metadata=out.metadata,
                    code_version=out.code_version,
                )
                for name, out in outs.items()
            }
        with warnings.catch_warnings():  # `version` is the only public accessor of the op's code version
            warnings.simplefilter("ignore", category=DeprecationWarning)
            code_version = node_def.version
        return dg.OpDefinition(
            compute_fn=node_def.compute_fn,
            name=node_def.name,
            ins={**node_def.ins, **{n: dg.In(dg.Nothing) for n in names}},
            outs=outs,
            description=node_def.description,
            config_schema=node_def.config_schema,
            required_resource_keys=node_def.required_resource_keys,
            tags=node_def.tags,
            code_version=code_version,
            retry_policy=node_def.retry_policy,
            pool=node_def.pool,
        )
    if isinstance(node_def, dg.GraphDefinition):
        mappings = [
            dg.InputMapping(graph_input_name=n, mapped_node_name=node.name, mapped_node_input_name=n)
            for n in names
            for node in node_def.nodes
        ]
        return dg.GraphDefinition(
            name=node_def.name,
            description=node_def.description,
            node_defs=[_rebuilt(child, names, optional_outputs) for child in node_def.node_defs],
            dependencies=node_def.dependencies,
            input_mappings=[*node_def.input_mappings, *mappings],
            output_mappings=node_def.output_mappings,
            config=node_def.config_mapping,
            tags=node_def.tags,
        )
    raise TypeError(f"Cannot add inputs to {type(node_def).__name__} '{node_def.name}'.")


if TYPE_CHECKING:

    @overload
    def metaxify(obj: _Enrichable, /) -> _Enrichable: ...
    @overload
    def metaxify(obj: list[_Enrichable], /) -> list[_Enrichable]: ...
    @overload
    def metaxify(
        obj: None = None,
        /,
        *,
        feature: CoercibleToFeatureKey | None = None,
        key: dg.AssetKey | str | Sequence[str] | None = None,
        key_prefix: str | Sequence[str] | None = None,
        inject_metaxy_kind: bool = True,
        inject_code_version: bool = True,
        set_description: bool = True,
        inject_column_schema: bool = True,
        inject_column_lineage: bool = True,
    ) -> _Metaxify: ...
    def metaxify(obj: Any = None, /, **options: Any) -> Any:
        """Type checkers' view of :class:`_Metaxify` (see its docstring)."""

else:
    metaxify = _Metaxify
    metaxify.__name__ = metaxify.__qualname__ = "metaxify"
