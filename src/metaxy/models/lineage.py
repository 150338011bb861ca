"""How the samples of a feature relate to the samples of one upstream feature.

A :class:`LineageRelationship` wraps one of three relationships, told apart by ``type``:

- :class:`IdentityRelationship` (``"1:1"``): one downstream sample per upstream sample.
- :class:`AggregationRelationship` (``"N:1"``): many upstream samples make one downstream sample,
  grouped by ``on`` (default: the downstream id columns).
- :class:`ExpansionRelationship` (``"1:N"``): one upstream sample makes many downstream samples;
  ``on`` names the parent id columns that every child row carries.

Serialised (``model_dump(mode="json")``) as ``{"relationship": {"type": "1:1"}}`` etc., the shape
the published Metaxy library stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

__all__ = [
    "AggregationRelationship",
    "ExpansionRelationship",
    "IdentityRelationship",
    "LineageRelationship",
    "LineageRelationshipType",
    "LineageType",
]

LineageType = Literal["1:1", "N:1", "1:N"]


class LineageRelationshipType(StrEnum):
    """The three kinds of lineage, valued as their ``type`` strings."""

    IDENTITY = "1:1"
    AGGREGATION = "N:1"
    EXPANSION = "1:N"


def _columns(value: Any) -> Any:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


class _Relationship(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    type: LineageType

    def get_aggregation_columns(self, target_id_columns: Sequence[str]) -> tuple[str, ...] | None:
        """The columns upstream rows are grouped by for this relationship (None: no grouping).

        Args:
            target_id_columns: the downstream feature's id columns.
        """
        return None


class IdentityRelationship(_Relationship):
    """One downstream sample per upstream sample (``"1:1"``)."""

    type: Literal["1:1"] = "1:1"


class AggregationRelationship(_Relationship):
    """Many upstream samples make one downstream sample (``"N:1"``), grouped by ``on``.

    ``on`` defaults to the downstream feature's id columns.
    """

    type: Literal["N:1"] = "N:1"
    on: tuple[str, ...] | None = None

    @field_validator("on", mode="before")
    @classmethod
    def _on(cls, value: Any) -> Any:
        return _columns(value)

    @field_serializer("on")
    def _ser_on(self, value: tuple[str, ...] | None) -> list[str] | None:
        return list(value) if value is not None else None

    def get_aggregation_columns(self, target_id_columns: Sequence[str]) -> tuple[str, ...] | None:
        return self.on if self.on is not None else tuple(target_id_columns)


class ExpansionRelationship(_Relationship):
    """One upstream sample makes many downstream samples (``"1:N"``).

    ``on`` names the parent id columns every child row carries; ``id_generation_pattern``
    optionally documents how child ids are formed.
    """

    type: Literal["1:N"] = "1:N"
    on: tuple[str, ...] | None = None
    id_generation_pattern: str | None = None

    @field_validator("on", mode="before")
    @classmethod
    def _on(cls, value: Any) -> Any:
        return _columns(value)

    @model_validator(mode="after")
    def _needs_on(self) -> ExpansionRelationship:
        if not self.on:
            raise ValueError(
                "Expansion lineage needs `on`: the parent id columns every child row carries. "
                "Hint: LineageRelationship.expansion(on=['video_id'])."
            )
        return self

    @field_serializer("on")
    def _ser_on(self, value: tuple[str, ...] | None) -> list[str] | None:
        return list(value) if value is not None else None

    def get_aggregation_columns(self, target_id_columns: Sequence[str]) -> tuple[str, ...] | None:
        return self.on


AnyRelationship = Annotated[
    IdentityRelationship | AggregationRelationship | ExpansionRelationship, Field(discriminator="type")
]


class LineageRelationship(BaseModel):
    """Identity (1:1), aggregation (N:1) or expansion (1:N) lineage of one dependency.

    Use the constructors: ``identity()``, ``aggregation(on=None)`` (``on`` defaults to the
    downstream id columns) and ``expansion(on, id_generation_pattern=None)``.

    Example:
        >>> LineageRelationship.aggregation(on=["group"]).model_dump(mode="json")
        {'relationship': {'type': 'N:1', 'on': ['group']}}
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    relationship: AnyRelationship = Field(default_factory=IdentityRelationship)

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, value: Any) -> Any:
        # ``LineageRelationship(type="N:1", on=...)`` and the flat dicts metaxy 0.1 stored.
        if isinstance(value, dict) and "relationship" not in value and "type" in value:
            return {"relationship": dict(value)}
        if isinstance(value, _Relationship):
            return {"relationship": value}
        return value

    @classmethod
    def identity(cls) -> LineageRelationship:
        """One downstream sample per upstream sample."""
        return cls(relationship=IdentityRelationship())

    @classmethod
    def aggregation(cls, on: str | Sequence[str] | None = None) -> LineageRelationship:
        """Many upstream samples per downstream sample, grouped by ``on`` (default: downstream ids)."""
        return cls(relationship=AggregationRelationship(on=on))

    @classmethod
    def expansion(cls, on: str | Sequence[str], id_generation_pattern: str | None = None) -> LineageRelationship:
        """Many downstream samples per upstream sample; ``on`` = the parent id columns."""
        return cls(relationship=ExpansionRelationship(on=on, id_generation_pattern=id_generation_pattern))

    # --- views of the wrapped relationship -------------------------------------------------------
    @property
    def type(self) -> LineageRelationshipType:
        return LineageRelationshipType(self.relationship.type)

    @property
    def on(self) -> tuple[str, ...] | None:
        return getattr(self.relationship, "on", None)

    @property
    def id_generation_pattern(self) -> str | None:
        return getattr(self.relationship, "id_generation_pattern", None)

    @property
    def is_identity(self) -> bool:
        return self.relationship.type == "1:1"

    @property
    def is_aggregation(self) -> bool:
        return self.relationship.type == "N:1"

    @property
    def is_expansion(self) -> bool:
        return self.relationship.type == "1:N"

    def get_aggregation_columns(self, target_id_columns: Sequence[str]) -> tuple[str, ...] | None:
        """The columns upstream rows are grouped by (None for identity lineage).

        Args:
            target_id_columns: the downstream feature's id columns.
        """
        return self.relationship.get_aggregation_columns(target_id_columns)
