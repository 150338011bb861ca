"""Result types of ``resolve_update``: the samples to compute (``new``), recompute (``stale``)
and forget (``orphaned``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import narwhals as nw
import polars as pl

from metaxy.frames import collect_to_polars, to_polars_lazy

__all__ = ["AccessMode", "Increment", "LazyIncrement", "PolarsIncrement", "PolarsLazyIncrement"]

AccessMode = Literal["r", "w"]


@dataclass(frozen=True)
class PolarsIncrement:
    """An eager increment as Polars DataFrames."""

    new: pl.DataFrame
    stale: pl.DataFrame
    orphaned: pl.DataFrame


@dataclass(frozen=True)
class PolarsLazyIncrement:
    """A lazy increment as Polars LazyFrames; ``input`` is the joined upstream (None with samples)."""

    new: pl.LazyFrame
    stale: pl.LazyFrame
    orphaned: pl.LazyFrame
    input: pl.LazyFrame | None = None

    def collect(self) -> PolarsIncrement:
        new, stale, orphaned = pl.collect_all([self.new, self.stale, self.orphaned])
        return PolarsIncrement(new, stale, orphaned)


@dataclass(frozen=True)
class Increment:
    """What ``resolve_update`` found, as eager narwhals DataFrames.

    Attributes:
        new: expected samples with no stored row (compute them).
        stale: expected samples whose stored provenance differs (recompute them).
        orphaned: stored samples no longer produced by the upstream (stored columns).
    """

    new: nw.DataFrame[Any]
    stale: nw.DataFrame[Any]
    orphaned: nw.DataFrame[Any]

    def to_polars(self) -> PolarsIncrement:
        return PolarsIncrement(*(collect_to_polars(f) for f in (self.new, self.stale, self.orphaned)))

    @property
    def is_empty(self) -> bool:
        """True when nothing needs computing: no new and no stale samples."""
        return len(self.new) == 0 and len(self.stale) == 0

    def __repr__(self) -> str:
        return f"Increment(new={len(self.new)}, stale={len(self.stale)}, orphaned={len(self.orphaned)})"


@dataclass(frozen=True)
class LazyIncrement:
    """A lazy increment (narwhals LazyFrames); nothing is computed until collected.

    ``input`` is the joined upstream with computed provenance (None when ``samples`` were given).
    """

    new: nw.LazyFrame[Any]
    stale: nw.LazyFrame[Any]
    orphaned: nw.LazyFrame[Any]
    input: nw.LazyFrame[Any] | None = None
    collector: Callable[[], Increment] | None = field(default=None, repr=False, compare=False)

    def collect(self) -> Increment:
        """Collect all three frames (in one pass where the backend can)."""
        if self.collector is not None:
            return self.collector()
        natives = [f.to_native() for f in (self.new, self.stale, self.orphaned)]
        if all(isinstance(n, pl.LazyFrame) for n in natives):
            frames = pl.collect_all(natives)
            return Increment(*(nw.from_native(f, eager_only=True) for f in frames))
        return Increment(*(f.collect() for f in (self.new, self.stale, self.orphaned)))

    def to_polars(self) -> PolarsLazyIncrement:
        new, stale, orphaned = (to_polars_lazy(f) for f in (self.new, self.stale, self.orphaned))
        return PolarsLazyIncrement(new, stale, orphaned, None if self.input is None else to_polars_lazy(self.input))
