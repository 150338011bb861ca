"""Declarative feature specifications: ``FeatureSpec`` and its dependencies ``FeatureDep``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from metaxy.models.field import FieldSpec
from metaxy.models.fields_mapping import FieldsMapping
from metaxy.models.keys import FeatureKey, FieldKey, ValidatedFeatureKey, coerce_to_feature_key
from metaxy.models.lineage import LineageRelationship
from metaxy.versioning.hashing import sha256_hex

if TYPE_CHECKING:
    import narwhals as nw

    from metaxy.models.filter_expression import FilterExpression

__all__ = ["FeatureDep", "FeatureDepMetadata", "FeatureSpec", "FeatureSpecWithIDColumns", "IDColumns"]

IDColumns: TypeAlias = Sequence[str]
FeatureDepMetadata: TypeAlias = dict[str, Any]


class FeatureDep(BaseModel):
    """A dependency of a feature on an upstream feature.

    Args:
        feature: the upstream feature (key string, parts, key, class, spec or definition).
        select: upstream columns to keep (post-rename names). ``None`` keeps all, ``()`` keeps
            only id and system columns. Id, system and lineage ``on`` columns are always kept.
        rename: ``{old: new}`` column renames applied before ``select`` and ``filters``.
        filters: SQL WHERE fragments applied to the upstream after renames; stored as
            ``sql_filters`` (also accepted as the keyword). The ``filters`` property gives them
            parsed, as narwhals expressions.
        fields_mapping: how this upstream's fields map onto the downstream fields.
        lineage: identity, aggregation or expansion (see :class:`LineageRelationship`).
        optional: left-join this upstream (missing rows give NULLs) instead of inner-joining.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    feature: ValidatedFeatureKey
    select: tuple[str, ...] | None = None
    rename: dict[str, str] | None = None
    # `filters=` (the documented keyword) or `sql_filters=` (the stored name); dumped as `sql_filters`
    sql_filters: tuple[str, ...] | None = Field(
        default=None, alias="filters", validation_alias=AliasChoices("filters", "sql_filters")
    )
    fields_mapping: FieldsMapping = Field(default_factory=FieldsMapping.default)
    lineage: LineageRelationship = Field(default_factory=LineageRelationship.identity)
    optional: bool = False
    metadata: FeatureDepMetadata = Field(default_factory=dict)

    @field_validator("select", "sql_filters", mode="before")
    @classmethod
    def _tuple(cls, value: Any) -> Any:
        if value is None:
            return None
        return (value,) if isinstance(value, str) else tuple(value)

    @field_validator("sql_filters")
    @classmethod
    def _parse_filters(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if not value:
            return value
        from metaxy.models.filter_expression import FilterExpression  # sqlglot only when filters are used

        for text in value:
            FilterExpression.parse(text)  # raises FilterParseError early, with the offending text
        return value

    @model_validator(mode="after")
    def _select_not_renamed_away(self) -> FeatureDep:
        if self.select and self.rename:
            renamed_away = set(self.rename) - set(self.rename.values())
            clash = sorted(set(self.select) & renamed_away)
            if clash:
                raise ValueError(
                    f"FeatureDep on '{self.feature}' selects {clash}, which `rename` renames away. "
                    f"Hint: select the new names: {[self.rename[c] for c in clash]}."
                )
        return self

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.metadata:  # the published shape has no `metadata`; keep dumps identical
            data.pop("metadata", None)
        return data

    @property
    def filters(self) -> tuple[nw.Expr, ...]:
        """The ``sql_filters`` parsed to narwhals expressions (empty when there are none)."""
        return tuple(f.to_narwhals() for f in self.filter_expressions)

    @cached_property
    def filter_expressions(self) -> tuple[FilterExpression, ...]:
        """The ``sql_filters`` parsed to metaxy's filter AST (compiles to Polars, narwhals and SQL)."""
        from metaxy.models.filter_expression import FilterExpression

        return tuple(FilterExpression.parse(text) for text in self.sql_filters or ())

    @classmethod
    def coerce(cls, value: Any) -> FeatureDep:
        """A ``FeatureDep`` from a dep, a dict, or anything key-coercible (str, class, spec ...)."""
        if isinstance(value, FeatureDep):
            return value
        if isinstance(value, Mapping):
            return cls.model_validate(value)
        return cls(feature=coerce_to_feature_key(value))


class FeatureSpec(BaseModel):
    """The declarative definition of a feature.

    Args:
        key: the feature key, e.g. ``"video/raw"``.
        id_columns: the columns identifying a sample (required, non-empty).
        deps: upstream features: ``FeatureDep`` objects, or anything key-coercible.
        fields: the feature's logical fields (strings are shorthand for ``FieldSpec(key=...)``);
            default one field ``default``.
        metadata: free-form; does not affect versions.
        description: human description (filled from the class docstring in definitions).
        data_version_columns: early cutoff. Columns whose written values *are* the sample's data
            version: a list (every field's data version hashes those columns) or a mapping
            ``{field: [columns]}`` (fields not named keep the provenance). Computed at write;
            when a recomputed sample's content is unchanged, its downstream stays up to date.
            Does not affect any version; omitted from dumps when unset.

    Example:
        >>> spec = FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", "frames"])
        >>> spec.table_name(), [f.key.to_string() for f in spec.fields]
        ('video__raw', ['audio', 'frames'])
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    key: ValidatedFeatureKey
    id_columns: tuple[str, ...]
    deps: list[FeatureDep] = Field(default_factory=list)
    fields: list[FieldSpec] = Field(default_factory=lambda: [FieldSpec()])
    metadata: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    data_version_columns: tuple[str, ...] | dict[str, tuple[str, ...]] | None = None

    @field_validator("data_version_columns", mode="before")
    @classmethod
    def _data_version_columns(cls, value: Any) -> Any:
        from metaxy.versioning.content import coerce_data_version_columns

        return coerce_data_version_columns(value)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.data_version_columns is None:  # unset: dumps (and every version) as before
            data.pop("data_version_columns", None)
        return data

    @field_validator("id_columns", mode="before")
    @classmethod
    def _id_columns(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = (value,)
        value = tuple(value)
        if not value:
            raise ValueError("id_columns must be non-empty. Hint: name the column(s) that identify a sample.")
        return value

    @field_validator("deps", mode="before")
    @classmethod
    def _deps(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, FeatureDep | str | FeatureKey | type):
            value = [value]
        return [FeatureDep.coerce(v) for v in value]

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        if isinstance(value, FieldSpec | str):
            value = [value]
        fields = [FieldSpec.coerce(v) for v in value]
        seen: set[FieldKey] = set()
        for f in fields:
            if f.key in seen:
                raise ValueError(f"Duplicate field key found: {f.key}. Hint: field keys must be unique in a feature.")
            seen.add(f.key)
        return fields

    @model_validator(mode="after")
    def _unique_deps(self) -> FeatureSpec:
        keys = [d.feature for d in self.deps]
        dupes = sorted({k.to_string() for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"Feature '{self.key}' depends on {dupes} more than once. Hint: list each upstream once.")
        if self.key in keys:
            raise ValueError(f"Feature '{self.key}' depends on itself. Hint: remove it from its own deps.")
        if isinstance(self.data_version_columns, dict):
            known = {f.key.to_string() for f in self.fields}
            unknown = sorted(set(self.data_version_columns) - known)
            if unknown:
                raise ValueError(
                    f"Feature '{self.key}': data_version_columns names unknown field(s) {unknown}. "
                    f"Hint: use the feature's fields: {sorted(known)}."
                )
        return self

    @field_serializer("id_columns")
    def _ser_ids(self, value: tuple[str, ...]) -> list[str]:
        return list(value)

    # --- derived -------------------------------------------------------------------------------
    @property
    def deps_by_key(self) -> dict[FeatureKey, FeatureDep]:
        return {d.feature: d for d in self.deps}

    @property
    def fields_by_key(self) -> dict[FieldKey, FieldSpec]:
        return {f.key: f for f in self.fields}

    def table_name(self) -> str:
        return self.key.table_name

    @property
    def code_version(self) -> str:
        """SHA-256 over the fields (sorted by key) of key ‖ code version; no dependencies."""
        parts: list[str] = []
        for f in sorted(self.fields, key=lambda f: f.key.to_string()):
            parts += [f.key.to_string(), f.code_version]
        return sha256_hex(parts)

    @property
    def feature_spec_version(self) -> str:
        """SHA-256 of the spec's sorted JSON dump: changes with any field of the spec."""
        return sha256_hex([json.dumps(self.model_dump(mode="json"), sort_keys=True)])


FeatureSpecWithIDColumns = FeatureSpec
