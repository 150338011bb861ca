"""How the samples of a feature relate to the samples of one upstream feature."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["LineageRelationship", "LineageType"]

LineageType = Literal["1:1", "N:1", "1:N"]


class LineageRelationship(BaseModel):
    """Identity (1:1), aggregation (N:1) or expansion (1:N) lineage.

    Use the constructors: ``identity()``, ``aggregation(on=None)`` (``on`` defaults to the
    downstream id columns) and ``expansion(on, id_generation_pattern=None)`` (``on`` = the parent
    id columns that every child row carries).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    type: LineageType = "1:1"
    on: tuple[str, ...] | None = None
    id_generation_pattern: str | None = None

    @field_validator("on", mode="before")
    @classmethod
    def _tuple(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else (tuple(value) if value is not None else None)

    @model_validator(mode="after")
    def _check(self) -> LineageRelationship:
        if self.type == "1:N" and not self.on:
            raise ValueError(
                "Expansion lineage needs `on`: the parent id columns every child row carries. "
                "Hint: LineageRelationship.expansion(on=['video_id'])."
            )
        if self.type == "1:1" and self.on is not None:
            raise ValueError("Identity lineage takes no `on` columns. Hint: use LineageRelationship.identity().")
        return self

    @classmethod
    def identity(cls) -> LineageRelationship:
        return cls(type="1:1")

    @classmethod
    def aggregation(cls, on: Any = None) -> LineageRelationship:
        return cls(type="N:1", on=on)

    @classmethod
    def expansion(cls, on: Any, id_generation_pattern: str | None = None) -> LineageRelationship:
        return cls(type="1:N", on=on, id_generation_pattern=id_generation_pattern)

    @property
    def is_identity(self) -> bool:
        return self.type == "1:1"

    @property
    def is_aggregation(self) -> bool:
        return self.type == "N:1"

    @property
    def is_expansion(self) -> bool:
        return self.type == "1:N"
