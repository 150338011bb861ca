"""Collecting and converting the dataframes metaxy hands out.

Stores return narwhals frames (lazy or eager) over whatever engine holds the data; these helpers
turn any of them into Polars or Arrow, and give a computed Polars result back in the frame type
the caller passed in. They are published as ``metaxy.utils.collect_to_polars`` /
``collect_to_arrow``.

Example:
    >>> import polars as pl
    >>> collect_to_polars(pl.LazyFrame({"a": [1, 2]})).shape
    (2, 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import narwhals as nw
import polars as pl

if TYPE_CHECKING:
    import pyarrow as pa
    from narwhals.typing import IntoFrame

__all__ = ["FrameLike", "collect_to_arrow", "collect_to_polars", "like_input", "to_polars_lazy"]

FrameLike: TypeAlias = "IntoFrame | nw.DataFrame[Any] | nw.LazyFrame[Any]"
"""A frame metaxy accepts: Polars, pandas, PyArrow, DuckDB ... (anything narwhals wraps), or a narwhals frame."""


def to_polars_lazy(frame: Any) -> pl.LazyFrame:
    """Any frame narwhals understands as a Polars LazyFrame: lazy Polars stays lazy (also behind
    narwhals); frames of other engines are collected and converted.

    This is metaxy's one "to Polars" conversion; :func:`collect_to_polars` collects its result.

    Raises:
        TypeError: ``frame`` is not a dataframe narwhals understands.
    """
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    nw_frame = _narwhals(frame)
    native = nw_frame.to_native()
    if isinstance(native, pl.LazyFrame | pl.DataFrame):
        return native.lazy()
    if isinstance(nw_frame, nw.LazyFrame):
        nw_frame = nw_frame.collect()
    return nw_frame.to_polars().lazy()


def collect_to_polars(frame: Any) -> pl.DataFrame:
    """Collect a lazy or eager frame (narwhals, Polars, pandas, Arrow, DuckDB ...) into a Polars DataFrame.

    Raises:
        TypeError: ``frame`` is not a dataframe narwhals understands.
    """
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, nw.DataFrame):
        native = frame.to_native()
        return native if isinstance(native, pl.DataFrame) else frame.to_polars()
    return to_polars_lazy(frame).collect()


def collect_to_arrow(frame: Any) -> pa.Table:
    """Collect a lazy or eager frame into a ``pyarrow.Table``.

    Raises:
        TypeError: ``frame`` is not a dataframe narwhals understands.
    """
    if isinstance(frame, pl.DataFrame | pl.LazyFrame):
        return collect_to_polars(frame).to_arrow()
    nw_frame = _narwhals(frame)
    if isinstance(nw_frame, nw.LazyFrame):
        nw_frame = nw_frame.collect()
    return nw_frame.to_arrow()


def like_input(original: Any, result: pl.LazyFrame) -> Any:
    """``result`` in the frame type of ``original``: the same library, eager or lazy alike.

    Polars in → Polars out; a narwhals frame in → a narwhals frame of the same eagerness; pandas
    or Arrow in → pandas or Arrow out (collected).
    """
    if isinstance(original, pl.LazyFrame):
        return result
    if isinstance(original, pl.DataFrame):
        return result.collect()
    if isinstance(original, nw.LazyFrame):
        return nw.from_native(result)
    if isinstance(original, nw.DataFrame):
        return nw.from_native(result.collect(), eager_only=True)
    eager = nw.from_native(original, pass_through=True)
    if isinstance(eager, nw.DataFrame):
        collected = result.collect()
        backend = eager.implementation
        if backend.is_pandas():
            return collected.to_pandas()
        if backend.is_pyarrow():
            return collected.to_arrow()
        return collected
    if isinstance(eager, nw.LazyFrame):
        return nw.from_native(result)
    return result


def _narwhals(frame: Any) -> nw.DataFrame[Any] | nw.LazyFrame[Any]:
    converted = nw.from_native(frame, pass_through=True)
    if not isinstance(converted, nw.DataFrame | nw.LazyFrame):
        raise TypeError(
            f"Cannot collect a {type(frame).__name__} as a dataframe. "
            "Hint: pass a narwhals, Polars, pandas, Arrow or DuckDB frame."
        )
    return converted
