"""Shared helpers for per-sample inspection: id parsing, matching expressions, row histories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from metaxy.errors import MetaxyError
from metaxy.models import constants as c

__all__ = ["SampleIdError", "as_dict", "history", "match", "parse_sample_id", "timestamp"]


class SampleIdError(MetaxyError, ValueError):
    """A sample id given on the command line does not fit the feature's id columns."""


def parse_sample_id(text: str, id_columns: Sequence[str]) -> dict[str, str]:
    """``"a"`` (single id column) or ``"col=value[,col=value]"`` as ``{column: value}``.

    Raises:
        SampleIdError: an unknown column, or a bare value for a feature with several id columns.
    """
    if "=" not in text:
        if len(id_columns) != 1:
            raise SampleIdError(
                f"Sample id '{text}' is ambiguous: the id columns are {', '.join(id_columns)}. "
                f"Hint: write it as {','.join(f'{col}=...' for col in id_columns)}."
            )
        return {id_columns[0]: text}
    out: dict[str, str] = {}
    for part in text.split(","):
        col, sep, value = part.partition("=")
        col = col.strip()
        if not sep or col not in id_columns:
            raise SampleIdError(
                f"Sample id '{text}': '{col}' is not an id column (id columns: {', '.join(id_columns)}). "
                "Hint: write col=value pairs separated by commas."
            )
        out[col] = value
    return out


def match(values: Mapping[str, Any]) -> Any:
    """A narwhals predicate: every column equals its value, compared as text (ids come from the command line)."""
    import narwhals as nw

    preds = [nw.col(col).cast(nw.String) == str(v) for col, v in values.items()]
    return nw.all_horizontal(*preds, ignore_nulls=False) if len(preds) > 1 else preds[0]


def history(store: Any, key: Any, values: Mapping[str, Any]) -> Any:
    """Every stored row of ``key`` matching ``values`` (all feature versions, soft deletes included), oldest first.

    Returns an empty Polars frame when the store (and its fallbacks) have no table for ``key``.
    """
    import polars as pl

    if not values or not store.has_feature(key, check_fallback=True):
        return pl.DataFrame()
    frame = store.read(
        key,
        filters=[match(values)],
        with_feature_history=True,
        with_sample_history=True,
        include_soft_deleted=True,
    )
    df = frame.collect().to_polars()
    return df.sort(pl.coalesce(c.DELETED_AT, c.UPDATED_AT)) if df.height else df


def as_dict(value: Any) -> dict[str, Any]:
    """A ``_by_field`` value (Struct → dict, Map → list of key/value pairs) as a dict."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):
        return {item["key"]: item["value"] for item in value if isinstance(item, Mapping)}
    return {}


def timestamp(value: Any) -> str | None:
    """An ISO-8601 string of a stored timestamp (``None`` stays ``None``)."""
    return None if value is None else value.isoformat()
