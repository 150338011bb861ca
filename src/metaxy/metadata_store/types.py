"""Result types of ``resolve_update``: the samples to compute (``new``), recompute (``stale``)
and forget (``orphaned``), and the quarantined samples left out of both (``failed``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import narwhals as nw
import polars as pl

from metaxy.frames import collect_to_polars, to_polars_lazy

__all__ = ["FAILURE_COLUMNS", "AccessMode", "Increment", "LazyIncrement", "PolarsIncrement", "PolarsLazyIncrement"]

AccessMode = Literal["r", "w"]

#: The columns ``failed`` adds to the expected columns of a sample: why it failed and when.
FAILURE_COLUMNS: tuple[str, ...] = ("metaxy_error", "metaxy_error_type", "metaxy_failed_at")


@dataclass(frozen=True)
class PolarsIncrement:
    """An eager increment as Polars DataFrames."""

    new: pl.DataFrame
    stale: pl.DataFrame
    orphaned: pl.DataFrame
    failed: pl.DataFrame = field(default_factory=lambda: _empty_failed_polars(None))


@dataclass(frozen=True)
class PolarsLazyIncrement:
    """A lazy increment as Polars LazyFrames; ``input`` is the joined upstream (None with samples)."""

    new: pl.LazyFrame
    stale: pl.LazyFrame
    orphaned: pl.LazyFrame
    input: pl.LazyFrame | None = None
    failed: pl.LazyFrame = field(default_factory=lambda: _empty_failed_polars(None).lazy())

    def collect(self) -> PolarsIncrement:
        new, stale, orphaned, failed = pl.collect_all([self.new, self.stale, self.orphaned, self.failed])
        return PolarsIncrement(new, stale, orphaned, failed)


@dataclass(frozen=True)
class Increment:
    """What ``resolve_update`` found, as eager narwhals DataFrames.

    Attributes:
        new: expected samples with no stored row (compute them).
        stale: expected samples whose stored provenance differs (recompute them).
        orphaned: stored samples no longer produced by the upstream (stored columns).
        failed: expected samples left out of ``new`` / ``stale`` because a failure was recorded
            for them with the same input provenance and feature version (``store.record_failures``);
            the expected columns plus :data:`FAILURE_COLUMNS`. Empty when nothing is quarantined.
    """

    new: nw.DataFrame[Any]
    stale: nw.DataFrame[Any]
    orphaned: nw.DataFrame[Any]
    # default_factory (not a plain default) leaves no class attribute, so an unset ``failed`` is
    # computed by ``__post_init__`` from ``new``'s columns (see _empty_failed).
    failed: nw.DataFrame[Any] = field(default_factory=lambda: _UNSET)

    def __post_init__(self) -> None:
        if self.failed is _UNSET:
            object.__setattr__(self, "failed", _empty_failed(self.new))

    def to_polars(self) -> PolarsIncrement:
        return PolarsIncrement(*(collect_to_polars(f) for f in (self.new, self.stale, self.orphaned, self.failed)))

    @property
    def is_empty(self) -> bool:
        """True when nothing needs computing: no new and no stale samples."""
        return len(self.new) == 0 and len(self.stale) == 0

    def __repr__(self) -> str:
        failed = f", failed={len(self.failed)}" if len(self.failed) else ""
        return f"Increment(new={len(self.new)}, stale={len(self.stale)}, orphaned={len(self.orphaned)}{failed})"


@dataclass(frozen=True)
class LazyIncrement:
    """A lazy increment (narwhals LazyFrames); nothing is computed until collected.

    ``input`` is the joined upstream with computed provenance (None when ``samples`` were given);
    ``failed`` the quarantined samples (see :class:`Increment`).
    """

    new: nw.LazyFrame[Any]
    stale: nw.LazyFrame[Any]
    orphaned: nw.LazyFrame[Any]
    input: nw.LazyFrame[Any] | None = None
    collector: Callable[[], Increment] | None = field(default=None, repr=False, compare=False)
    failed: nw.LazyFrame[Any] = field(default_factory=lambda: _UNSET)

    def __post_init__(self) -> None:
        if self.failed is _UNSET:
            object.__setattr__(self, "failed", _empty_failed(self.new))

    def __getattr__(self, name: str) -> Any:
        # Subclasses that bind their frames lazily (and skip the dataclass __init__) get the
        # empty ``failed`` default on first access.
        if name == "failed":
            return _empty_failed(self.new)
        raise AttributeError(name)

    def collect(self) -> Increment:
        """Collect all three frames (in one pass where the backend can)."""
        if self.collector is not None:
            return self.collector()
        natives = [f.to_native() for f in (self.new, self.stale, self.orphaned)]
        natives.append(self.failed.to_native())
        if all(isinstance(n, pl.LazyFrame) for n in natives):
            frames = pl.collect_all(natives)
            return Increment(*(nw.from_native(f, eager_only=True) for f in frames))
        return Increment(*(f.collect() for f in (self.new, self.stale, self.orphaned, self.failed)))

    def to_polars(self) -> PolarsLazyIncrement:
        new, stale, orphaned, failed = (to_polars_lazy(f) for f in (self.new, self.stale, self.orphaned, self.failed))
        return PolarsLazyIncrement(
            new, stale, orphaned, None if self.input is None else to_polars_lazy(self.input), failed
        )


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _failure_dtypes() -> dict[str, Any]:
    return {
        "metaxy_error": pl.String,
        "metaxy_error_type": pl.String,
        "metaxy_failed_at": pl.Datetime("us", "UTC"),
    }


def _empty_failed_polars(empty: pl.DataFrame | None) -> pl.DataFrame:
    """``empty``'s columns (a frame with no rows) plus the failure columns."""
    failure = _failure_dtypes()
    if empty is None:
        return pl.DataFrame(schema=failure)
    if any(n in empty.schema for n in failure):  # a user column of that name: retyped where it stands
        return pl.DataFrame(schema={**empty.schema, **failure})
    return empty.hstack([pl.Series(n, [], dtype=t) for n, t in failure.items()])  # no query plan


def _empty_failed(new: Any) -> Any:
    """No quarantined samples: ``new``'s columns (none of its rows) plus the failure columns,
    in ``new``'s backend (a DuckDB relation stays one)."""
    native = new.to_native()
    if isinstance(native, pl.DataFrame | pl.LazyFrame):
        empty = _empty_failed_polars(native.clear() if isinstance(native, pl.DataFrame) else native.clear().collect())
        return nw.from_native(empty if isinstance(native, pl.DataFrame) else empty.lazy())
    nw_dtypes = {
        "metaxy_error": nw.String(),
        "metaxy_error_type": nw.String(),
        "metaxy_failed_at": nw.Datetime("us", "UTC"),
    }
    return new.head(0).with_columns(nw.lit(None, dtype=dt).alias(n) for n, dt in nw_dtypes.items())
