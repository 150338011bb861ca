"""Automatic field-level dependency resolution (``FieldsMapping``).

A downstream field with no explicit ``FieldDep`` list gets its parents from each
``FeatureDep``'s fields mapping:

- ``default(match_suffix=False, exclude_fields=None)``: upstream fields whose key equals the
  downstream field's (or ends with its parts when ``match_suffix``); if none match, *all* fields.
- ``specific({downstream: {upstream, ...}})``: the listed upstream fields that exist.
- ``all()``: every upstream field. ``none()``: nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from metaxy.models.keys import FieldKey, coerce_to_field_key

__all__ = [
    "AllFieldsMapping",
    "DefaultFieldsMapping",
    "FieldsMapping",
    "FieldsMappingType",
    "NoneFieldsMapping",
    "SpecificFieldsMapping",
]


class FieldsMappingType(StrEnum):
    DEFAULT = "default"
    SPECIFIC = "specific"
    ALL = "all"
    NONE = "none"


class _Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    def resolve(self, field: FieldKey, upstream_fields: Iterable[FieldKey]) -> list[FieldKey]:
        raise NotImplementedError


def _field_list(value: Any) -> list[FieldKey]:
    return [coerce_to_field_key(v) for v in (value or [])]


class DefaultFieldsMapping(_Mapping):
    type: Literal["default"] = "default"
    match_suffix: bool = False
    exclude_fields: list[FieldKey] = Field(default_factory=list)

    @field_validator("exclude_fields", mode="before")
    @classmethod
    def _coerce(cls, value: Any) -> list[FieldKey]:
        return _field_list(value)

    @field_serializer("exclude_fields")
    def _ser(self, value: list[FieldKey]) -> list[str]:
        return [v.to_string() for v in value]

    def resolve(self, field: FieldKey, upstream_fields: Iterable[FieldKey]) -> list[FieldKey]:
        candidates = [f for f in upstream_fields if f not in self.exclude_fields]
        n = len(field)
        matched = [
            f for f in candidates if f == field or (self.match_suffix and len(f) >= n and f.parts[-n:] == field.parts)
        ]
        return matched or candidates


class SpecificFieldsMapping(_Mapping):
    type: Literal["specific"] = "specific"
    mapping: dict[FieldKey, frozenset[FieldKey]]

    @field_validator("mapping", mode="before")
    @classmethod
    def _coerce(cls, value: Mapping[Any, Any]) -> dict[FieldKey, frozenset[FieldKey]]:
        out: dict[FieldKey, frozenset[FieldKey]] = {}
        for k, v in value.items():
            ups = [v] if isinstance(v, str | FieldKey) else v
            out[coerce_to_field_key(k)] = frozenset(coerce_to_field_key(u) for u in ups)
        return out

    @field_serializer("mapping")
    def _ser(self, value: dict[FieldKey, frozenset[FieldKey]]) -> dict[str, list[str]]:
        return {k.to_string(): sorted(u.to_string() for u in v) for k, v in value.items()}

    def resolve(self, field: FieldKey, upstream_fields: Iterable[FieldKey]) -> list[FieldKey]:
        wanted = self.mapping.get(field, frozenset())
        return [f for f in upstream_fields if f in wanted]


class AllFieldsMapping(_Mapping):
    type: Literal["all"] = "all"

    def resolve(self, field: FieldKey, upstream_fields: Iterable[FieldKey]) -> list[FieldKey]:
        return list(upstream_fields)


class NoneFieldsMapping(_Mapping):
    type: Literal["none"] = "none"

    def resolve(self, field: FieldKey, upstream_fields: Iterable[FieldKey]) -> list[FieldKey]:
        return []


_AnyMapping = Annotated[
    DefaultFieldsMapping | SpecificFieldsMapping | AllFieldsMapping | NoneFieldsMapping,
    Field(discriminator="type"),
]


class FieldsMapping(BaseModel):
    """How a dependency's fields map onto the downstream feature's fields (see module docs).

    Example:
        >>> from metaxy.models.keys import FieldKey
        >>> m = FieldsMapping.default()
        >>> m.resolve(FieldKey("audio"), [FieldKey("audio"), FieldKey("frames")])
        [FieldKey('audio')]
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    mapping: _AnyMapping = Field(default_factory=DefaultFieldsMapping)

    @classmethod
    def default(cls, match_suffix: bool = False, exclude_fields: Iterable[Any] | None = None) -> FieldsMapping:
        return cls(mapping=DefaultFieldsMapping(match_suffix=match_suffix, exclude_fields=list(exclude_fields or [])))

    @classmethod
    def specific(cls, mapping: Mapping[Any, Any]) -> FieldsMapping:
        return cls(mapping=SpecificFieldsMapping(mapping=mapping))

    @classmethod
    def all(cls) -> FieldsMapping:
        return cls(mapping=AllFieldsMapping())

    @classmethod
    def none(cls) -> FieldsMapping:
        return cls(mapping=NoneFieldsMapping())

    @property
    def type(self) -> FieldsMappingType:
        return FieldsMappingType(self.mapping.type)

    def resolve(self, field: FieldKey, upstream_fields: Iterable[FieldKey]) -> list[FieldKey]:
        """The upstream fields (in the given order) that ``field`` depends on under this mapping."""
        return self.mapping.resolve(field, list(upstream_fields))
