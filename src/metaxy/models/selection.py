"""``FeatureSelection``: a selector of stored features by project, by key, or all of them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator, model_validator

from metaxy.models.keys import FeatureKey, coerce_to_feature_key

__all__ = ["FeatureSelection"]


class FeatureSelection(BaseModel):
    """Select features by ``projects``, ``keys`` or ``all``; combine with ``|``, ``&`` and ``-``.

    Example:
        >>> a = FeatureSelection(keys=["video/raw"]) | FeatureSelection(projects=["demo"])
        >>> a.projects, [str(k) for k in a.keys]
        (['demo'], ['video/raw'])
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    projects: list[str] | None = None
    keys: list[FeatureKey] | None = None
    all: bool | None = None

    @field_validator("projects", mode="before")
    @classmethod
    def _projects(cls, value: Any) -> Any:
        return sorted(set(value)) if value is not None else None

    @field_validator("keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if value is None:
            return None
        return sorted({coerce_to_feature_key(v) for v in value}, key=str)

    @field_serializer("keys")
    def _ser_keys(self, value: list[FeatureKey] | None) -> list[str] | None:
        return [k.to_string() for k in value] if value is not None else None

    @model_validator(mode="after")
    def _not_empty(self) -> FeatureSelection:
        if self.projects is None and self.keys is None and not self.all:
            raise ValueError("FeatureSelection needs projects, keys or all=True. Hint: FeatureSelection(all=True).")
        return self

    def matches(self, key: Any, project: str) -> bool:
        """Whether a feature (key, owning project) is selected."""
        if self.all:
            return True
        return (self.keys is not None and coerce_to_feature_key(key) in self.keys) or (
            self.projects is not None and project in self.projects
        )

    @staticmethod
    def _make(projects: set[str], keys: set[FeatureKey]) -> FeatureSelection | None:
        if not projects and not keys:
            return None
        return FeatureSelection(projects=sorted(projects) or None, keys=sorted(keys, key=str) or None)

    def __or__(self, other: FeatureSelection) -> FeatureSelection:
        if self.all or other.all:
            return FeatureSelection(all=True)
        result = self._make(
            set(self.projects or []) | set(other.projects or []), set(self.keys or []) | set(other.keys or [])
        )
        assert result is not None
        return result

    def __and__(self, other: FeatureSelection) -> FeatureSelection | None:
        if self.all:
            return other
        if other.all:
            return self
        return self._make(
            set(self.projects or []) & set(other.projects or []), set(self.keys or []) & set(other.keys or [])
        )

    def __sub__(self, other: FeatureSelection) -> FeatureSelection | None:
        if other.all:
            return None
        if self.all:
            raise ValueError("Cannot subtract from FeatureSelection(all=True). Hint: select projects or keys instead.")
        return self._make(
            set(self.projects or []) - set(other.projects or []), set(self.keys or []) - set(other.keys or [])
        )
