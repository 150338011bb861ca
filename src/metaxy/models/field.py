"""Fields of a feature (``FieldSpec``) and explicit field-level dependencies (``FieldDep``)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from metaxy.models.constants import DEFAULT_CODE_VERSION
from metaxy.models.keys import (
    FeatureKey,
    FieldKey,
    ValidatedFieldKey,
    coerce_to_feature_key,
    coerce_to_field_key,
)

__all__ = ["DEFAULT_CODE_VERSION", "FieldDep", "FieldSpec", "SpecialFieldDep"]



class SpecialFieldDep(Enum):
    """Special values for field dependencies. ``ALL`` means every field (of every dependency)."""

    ALL = "__METAXY_ALL_DEP__"


class FieldDep(BaseModel):
    """An explicit dependency of a field on fields of one upstream feature.

    Args:
        feature: the upstream feature (key string, parts, key, class, spec or definition).
        fields: upstream field keys, or ``SpecialFieldDep.ALL`` (default) for all of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    feature: FeatureKey
    fields: list[FieldKey] | SpecialFieldDep = SpecialFieldDep.ALL

    @field_validator("feature", mode="before")
    @classmethod
    def _coerce_feature(cls, value: Any) -> FeatureKey:
        return coerce_to_feature_key(value)

    @field_validator("fields", mode="before")
    @classmethod
    def _coerce_fields(cls, value: Any) -> list[FieldKey] | SpecialFieldDep:
        if value is SpecialFieldDep.ALL or value == SpecialFieldDep.ALL.value:
            return SpecialFieldDep.ALL
        if isinstance(value, str):
            raise ValueError(
                f"FieldDep.fields got the bare string {value!r}. Hint: pass a list of field keys "
                f"(fields=[{value!r}]) or SpecialFieldDep.ALL."
            )
        return [coerce_to_field_key(v) for v in value]

    @field_serializer("fields")
    def _ser_fields(self, value: list[FieldKey] | SpecialFieldDep) -> Any:
        return value.value if isinstance(value, SpecialFieldDep) else [v.to_string() for v in value]


class FieldSpec(BaseModel):
    """A logical field of a feature (a part of its data, e.g. ``audio``) with its code version.

    Args:
        key: the field key (default ``"default"``).
        code_version: bump it when the code producing this field changes.
        deps: ``SpecialFieldDep.ALL`` (every field of every dep), an explicit list of
            :class:`FieldDep`, or ``[]`` (default) to use each dependency's fields mapping.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    key: ValidatedFieldKey = Field(default_factory=lambda: FieldKey("default"))
    code_version: str = DEFAULT_CODE_VERSION
    deps: SpecialFieldDep | list[FieldDep] = Field(default_factory=list)

    @field_validator("code_version", mode="before")
    @classmethod
    def _code_version_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("deps", mode="before")
    @classmethod
    def _coerce_deps(cls, value: Any) -> Any:
        if value is SpecialFieldDep.ALL or value == SpecialFieldDep.ALL.value:
            return SpecialFieldDep.ALL
        if isinstance(value, FieldDep):
            return [value]
        return value

    @field_serializer("deps")
    def _ser_deps(self, value: SpecialFieldDep | list[FieldDep]) -> Any:
        if isinstance(value, SpecialFieldDep):
            return value.value
        return [d.model_dump(mode="json") for d in value]

    @classmethod
    def coerce(cls, value: Any) -> FieldSpec:
        """A ``FieldSpec`` from a spec, a dict, or a bare key (string / parts / ``FieldKey``)."""
        if isinstance(value, FieldSpec):
            return value
        if isinstance(value, dict):
            return cls.model_validate(value)
        return cls(key=coerce_to_field_key(value))
