"""Counting *samples* in an increment, whatever the lineage.

An increment frame does not hold one row per sample of the feature for every lineage: with
**expansion** (1:N) lineage, ``new`` and ``stale`` hold one row per *parent* (the children do not
exist yet) while ``orphaned`` holds stored child rows; with **aggregation** (N:1) lineage, ``new``
and ``stale`` hold one row per *upstream* row of each group. A sample is therefore identified by
the lineage's ``on`` columns (the parent for expansion, the group for aggregation) and by the id
columns otherwise. ``mx metadata status`` and the Dagster asset checks count with these helpers,
so they always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw

from metaxy.models.feature_spec import FeatureSpec

__all__ = ["count_samples", "example_samples", "sample_columns"]


def sample_columns(spec: FeatureSpec) -> list[str]:
    """The columns identifying one sample of ``spec``'s feature in its increment frames.

    The ``on`` columns of the first expansion or aggregation dep (the feature's id columns when
    that dep has no ``on``), else the feature's id columns.
    """
    for dep in spec.deps:
        if not dep.lineage.is_identity:
            return list(dep.lineage.on or spec.id_columns)
    return list(spec.id_columns)


def _unique_ids(frame: Any, columns: Sequence[str]) -> nw.DataFrame[Any]:
    df = nw.from_native(frame, eager_only=True) if not isinstance(frame, nw.DataFrame) else frame
    present = [c for c in columns if c in df.columns]
    return df.select(present).unique(subset=present, keep="first", maintain_order=True)


def count_samples(frame: Any, columns: Sequence[str]) -> int:
    """The number of distinct samples (``columns`` tuples) in an eager frame."""
    if len(frame) == 0:
        return 0
    return len(_unique_ids(frame, columns))


def example_samples(frame: Any, columns: Sequence[str], n: int = 5) -> list[str]:
    """Up to ``n`` distinct samples of ``frame``, sorted, each as its ``columns`` values joined by ``/``."""
    if len(frame) == 0:
        return []
    ids = _unique_ids(frame, columns)
    rows = sorted(tuple("" if v is None else str(v) for v in row) for row in ids.rows())
    return ["/".join(row) for row in rows[:n]]
