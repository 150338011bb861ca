"""``mx demo --ray``: the per-clip computations of an asset as Ray tasks, written back through the
datasink of :mod:`metaxy.ext.ray`.

The asset resolves its increment once (as without Ray); the clips to do are cut into blocks, each
block is computed by a Ray task, and the output rows are written as the feature's metadata from
the workers (through the committer actor for the demo's DuckDB store). The asset then reports
the materialization with the same counts as without Ray.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

import metaxy as mx

__all__ = ["compute_on_ray", "local_ray"]


@contextlib.contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[None]:
    """A local Ray cluster for the demo, unless one is already initialised (then it is used)."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def compute_on_ray(
    store: mx.MetadataStore,
    feature: type[mx.BaseFeature],
    compute: Callable[[dict[str, Any], Path], list[dict[str, Any]]],
    todo: pl.DataFrame,
    folder: Path,
    schema: dict[str, Any],
    system_columns: list[str],
    *,
    blocks: int = 4,
) -> int:
    """Run ``compute`` for every clip of ``todo`` in Ray tasks and write the rows through the
    datasink; returns the number of rows written."""
    import ray
    from metaxy.ext.ray import write_metadata

    if todo.is_empty():
        return 0
    step = -(-todo.height // blocks)
    ds = ray.data.from_arrow([todo.slice(i, step).to_arrow() for i in range(0, todo.height, step)])

    def per_block(batch: pa.Table) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for sample in batch.to_pylist():
            provenance = {c: sample[c] for c in system_columns}
            rows += [{**row, **provenance} for row in compute(sample, folder / sample["video_id"])]
        return pl.DataFrame(rows, schema=schema).to_arrow()

    report = write_metadata(ds.map_batches(per_block, batch_format="pyarrow", batch_size=None), store, feature)
    return report.rows
