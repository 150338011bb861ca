"""A Ray Data datasource reading a feature's metadata, or an increment, in parallel blocks.

* **An increment** (``new``, ``stale`` or both) is resolved **once**, on the driver, by the store
  (one statement on SQL stores); its rows are then cut into blocks that Ray hands to tasks.
* **A feature** is split by ranges of its first id column. On stores with many writers (and
  readers: PostgreSQL, Delta) every read task opens the store in its worker and reads its range
  with the user's filters pushed down to the store, next to the range bounds. A single-writer
  store (a DuckDB file) is read once on the driver -- a second process may not open the file --
  and its rows cut into blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from metaxy.errors import FilterParseError
from metaxy.models.keys import CoercibleToFeatureKey

from ._shipping import WorkerContext

if TYPE_CHECKING:
    import ray.data

    from metaxy.metadata_store.base import MetadataStore

__all__ = ["INCREMENT_COLUMN", "MetaxyDatasource", "read_feature", "read_increment"]

IncrementPart = Literal["new", "stale", "both"]
#: With ``increment="both"``, which part a row came from (``"new"`` or ``"stale"``).
INCREMENT_COLUMN = "metaxy_increment"


def _literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(type(value).__name__)
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def _metadata(table: pa.Table | None) -> BlockMetadata:
    return BlockMetadata(
        num_rows=None if table is None else table.num_rows,
        size_bytes=None if table is None else table.nbytes,
        exec_stats=None,
        input_files=None,
    )


class MetaxyDatasource(Datasource):
    """Read ``feature`` (or its increment) from ``store`` as a Ray Dataset.

    Args:
        store: the store (not open: the datasource opens it where it reads).
        feature: feature class, key or key string (in the active graph).
        increment: ``"new"``, ``"stale"`` or ``"both"`` to read what ``resolve_update`` finds
            instead of the stored rows (``"both"`` adds the column ``metaxy_increment``).
        filters: SQL filter strings (pushed down to the store; strings so that they travel to
            workers). For an increment they are ``target_filters`` of the resolve.
        columns: the columns to read (stored reads only).
        samples: the ``samples`` frame of ``resolve_update`` (root features).

    Raises:
        FilterParseError: a filter is not a SQL string (it could not be shipped to a worker).
    """

    def __init__(
        self,
        store: MetadataStore,
        feature: CoercibleToFeatureKey,
        *,
        increment: IncrementPart | None = None,
        filters: Sequence[str] = (),
        columns: Sequence[str] | None = None,
        samples: Any = None,
    ) -> None:
        bad = [type(f).__name__ for f in filters if not isinstance(f, str)]
        if bad:
            raise FilterParseError(
                f"Ray reads take SQL filter strings, got {', '.join(bad)}. Hint: write the filter as SQL, "
                'e.g. "score > 0.5" (an expression object cannot travel to the workers).'
            )
        if increment not in (None, "new", "stale", "both"):
            raise ValueError(f"Unknown increment part {increment!r}. Hint: use 'new', 'stale' or 'both'.")
        self._ctx = WorkerContext.capture(store, feature)
        self._filters = tuple(filters)
        self._columns = tuple(columns) if columns is not None else None
        self._rows: pa.Table | None = None
        self._split: tuple[str, list[Any]] | None = None
        with self._ctx.store.open("r"):
            if increment is not None:
                self._rows = self._resolve(increment, samples)
            elif self._ctx.concurrency == "single_writer":
                self._rows = self._read_all()
            else:
                self._split = self._id_ranges()

    def __repr__(self) -> str:
        return f"MetaxyDatasource({self._ctx!r})"

    def get_name(self) -> str:
        return "Metaxy"

    # --- on the driver -------------------------------------------------------------------------------
    def _resolve(self, part: IncrementPart, samples: Any) -> pa.Table:
        inc = self._ctx.store.resolve_update(
            self._ctx.key, samples=samples, target_filters=list(self._filters) or None
        ).to_polars()
        if part == "new":
            return inc.new.to_arrow()
        if part == "stale":
            return inc.stale.to_arrow()
        frames = [inc.new.with_columns(pl.lit("new").alias(INCREMENT_COLUMN))]
        frames.append(inc.stale.with_columns(pl.lit("stale").alias(INCREMENT_COLUMN)))
        return pl.concat(frames, how="diagonal_relaxed").to_arrow()

    def _read_all(self) -> pa.Table:
        frame = self._ctx.store.read(self._ctx.key, filters=list(self._filters), columns=self._columns)
        return frame.collect().to_arrow()

    def _id_ranges(self) -> tuple[str, list[Any]]:
        """The first id column and its sorted distinct values (range bounds are picked from them)."""
        graph_def = WorkerContext.graph_definition(self._ctx)
        id_col = graph_def.spec.id_columns[0]
        frame = self._ctx.store.read(self._ctx.key, filters=list(self._filters), columns=[id_col])
        ids = pl.from_arrow(frame.collect().to_arrow())
        assert isinstance(ids, pl.DataFrame)
        values = ids.get_column(id_col).unique().sort().to_list()
        try:
            for v in values[:1]:
                _literal(v)
        except TypeError:
            values = []  # an id type without a SQL literal here: one task reads everything
        return id_col, values

    # --- the read tasks --------------------------------------------------------------------------
    def estimate_inmemory_data_size(self) -> int | None:
        return None if self._rows is None else self._rows.nbytes

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        parallelism = max(1, parallelism)
        if self._rows is not None:
            return self._slice_tasks(self._rows, parallelism, per_task_row_limit)
        assert self._split is not None
        id_col, values = self._split
        if not values:
            return [self._range_task(None, None, None, per_task_row_limit)]
        n = min(parallelism, len(values))
        bounds = [values[len(values) * i // n] for i in range(n)]
        tasks = []
        for i, lo in enumerate(bounds):
            hi = bounds[i + 1] if i + 1 < n else None
            tasks.append(self._range_task(id_col, lo, hi, per_task_row_limit))
        return tasks

    def _slice_tasks(self, table: pa.Table, parallelism: int, limit: int | None) -> list[ReadTask]:
        n = max(1, min(parallelism, table.num_rows))
        step = -(-table.num_rows // n) if table.num_rows else 0
        slices = [table.slice(i * step, step) for i in range(n)] if step else [table]
        return [
            ReadTask(lambda s=s: [s], _metadata(s), schema=s.schema, per_task_row_limit=limit)  # type: ignore[misc]
            for s in slices
        ]

    def _range_task(self, id_col: str | None, lo: Any, hi: Any, limit: int | None) -> ReadTask:
        filters = list(self._filters)
        if id_col is not None:
            filters.append(f'"{id_col}" >= {_literal(lo)}')
            if hi is not None:
                filters.append(f'"{id_col}" < {_literal(hi)}')
        ctx, columns = self._ctx, self._columns

        def read() -> list[pa.Table]:
            with ctx.activate(), ctx.store.open("r"):
                return [ctx.store.read(ctx.key, filters=filters, columns=columns).collect().to_arrow()]

        return ReadTask(read, _metadata(None), per_task_row_limit=limit)


def read_feature(
    store: MetadataStore,
    feature: CoercibleToFeatureKey,
    *,
    filters: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    num_blocks: int | None = None,
) -> ray.data.Dataset:
    """A feature's stored metadata (current version, latest row per sample) as a Ray Dataset."""
    import ray.data

    source = MetaxyDatasource(store, feature, filters=filters, columns=columns)
    return ray.data.read_datasource(source, override_num_blocks=num_blocks)


def read_increment(
    store: MetadataStore,
    feature: CoercibleToFeatureKey,
    part: IncrementPart = "both",
    *,
    filters: Sequence[str] = (),
    samples: Any = None,
    num_blocks: int | None = None,
) -> ray.data.Dataset:
    """What ``resolve_update`` finds for ``feature`` (resolved once, here) as a Ray Dataset."""
    import ray.data

    source = MetaxyDatasource(store, feature, increment=part, filters=filters, samples=samples)
    return ray.data.read_datasource(source, override_num_blocks=num_blocks)
