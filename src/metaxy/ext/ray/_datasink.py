"""A Ray Data datasink that writes a Dataset's rows as a feature's metadata from many workers.

Each write task commits its blocks once under a block token (see :mod:`metaxy.ext.ray._commit`):
directly from the worker for stores with ``capabilities.concurrency == "many_writers"``
(PostgreSQL, Delta), through a bounded committer actor for ``"single_writer"`` stores (DuckDB).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from ray.data import Datasink
from ray.data.datasource import WriteResult

from metaxy.errors import DistributedWriteError
from metaxy.models.keys import CoercibleToFeatureKey

from ._commit import BlockReport, Committer, commit_block, submit_to_committer
from ._shipping import WorkerContext

if TYPE_CHECKING:
    import ray.data

    from metaxy.metadata_store.base import MetadataStore

__all__ = ["MetaxyDatasink", "WriteReport", "write_metadata"]

#: The driver's handles of its committer actors, by name: a named actor that is not detached is
#: destroyed when its last handle goes, so the driver keeps one for the next write to the store.
_COMMITTERS: dict[str, Any] = {}


@dataclass(frozen=True)
class WriteReport:
    """The outcome of a distributed write.

    Attributes:
        write_id: the write's id (block tokens are ``<write_id>/<task index>``).
        rows: rows of the Dataset now stored (written by this run or found from an earlier attempt).
        rows_written: rows appended by this run's successful attempts.
        blocks: write tasks that committed (or found their block committed).
        blocks_skipped: tasks whose block an earlier attempt had committed (retries).
    """

    write_id: str
    rows: int
    rows_written: int
    blocks: int
    blocks_skipped: int


def _to_arrow(block: Any) -> pa.Table:
    if isinstance(block, pa.Table):
        return block
    return pa.Table.from_pandas(block, preserve_index=False)


class MetaxyDatasink(Datasink[BlockReport]):
    """Write a Ray Dataset's rows as metadata of ``feature`` in ``store``.

    The rows need the feature's id columns and ``metaxy_provenance_by_field`` (an increment's
    columns plus computed fields); the system columns are stamped as by ``store.write``. The store
    object is shipped as its configuration (it pickles without connections; reprs mask secrets).
    For a single-writer store the driver must not hold the store open for writing during the write.

    Args:
        store: the store (not necessarily open).
        feature: feature class, key or key string (in the active graph).
        write_id: names the write (block tokens); a fresh one by default.
        max_pending_commits: the committer actor's queue bound (single-writer stores; set by the
            write that creates the store's committer).
    """

    def __init__(
        self,
        store: MetadataStore,
        feature: CoercibleToFeatureKey,
        *,
        write_id: str | None = None,
        max_pending_commits: int = 4,
    ) -> None:
        if max_pending_commits < 1:
            raise ValueError(f"max_pending_commits must be >= 1, got {max_pending_commits}.")
        self._ctx = WorkerContext.capture(store, feature)
        self.write_id = write_id or uuid.uuid4().hex[:16]
        self.max_pending_commits = max_pending_commits
        self.report: WriteReport | None = None
        self._actor: Any = None

    def __repr__(self) -> str:
        return f"MetaxyDatasink({self._ctx!r}, write_id={self.write_id})"

    @property
    def committer_name(self) -> str:
        """The committer of this write (single-writer stores): created at the start, stopped at the end."""
        return f"metaxy-committer-{self.write_id}"

    @property
    def single_writer(self) -> bool:
        return self._ctx.concurrency == "single_writer"

    def get_name(self) -> str:
        return "Metaxy"

    @property
    def supports_distributed_writes(self) -> bool:
        return True

    def on_write_start(self, schema: Any = None) -> None:
        if self.single_writer:
            import ray

            actor_cls: Any = ray.remote(Committer)
            self._actor = _COMMITTERS[self.committer_name] = actor_cls.options(
                name=self.committer_name,
                num_cpus=0,
                max_concurrency=1,
                max_restarts=-1,
                max_task_retries=-1,
                max_pending_calls=self.max_pending_commits,
            ).remote()
            ray.get(self._actor.ping.remote())

    def write(self, blocks: Iterable[Any], ctx: Any) -> BlockReport:
        token = f"{self.write_id}/{ctx.task_idx}"
        tables = [t for t in (_to_arrow(b) for b in blocks) if t.num_rows]
        if not tables:
            return BlockReport(token=token, rows=0, written=False)
        table = pa.concat_tables(tables, promote_options="permissive")
        if self.single_writer:
            import ray

            return submit_to_committer(ray.get_actor(self.committer_name), self._ctx, token, table)
        return commit_block(self._ctx, token, table)

    def on_write_complete(self, write_result: WriteResult[BlockReport]) -> None:
        reports = [r for r in write_result.write_returns if r.rows]
        self.report = WriteReport(
            write_id=self.write_id,
            rows=sum(r.rows for r in reports),
            rows_written=sum(r.rows for r in reports if r.written),
            blocks=len(reports),
            blocks_skipped=sum(1 for r in reports if not r.written),
        )
        self._stop_committer()

    def on_write_failed(self, error: Exception) -> None:
        self._stop_committer()

    def _stop_committer(self) -> None:
        actor = _COMMITTERS.pop(self.committer_name, None)
        self._actor = None
        if actor is not None:
            import ray

            ray.kill(actor)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_actor"] = None  # tasks find the committer by name
        return state


def write_metadata(
    dataset: ray.data.Dataset,
    store: MetadataStore,
    feature: CoercibleToFeatureKey,
    *,
    write_id: str | None = None,
    max_pending_commits: int = 4,
    max_retries: int = 3,
    concurrency: int | None = None,
) -> WriteReport:
    """Write ``dataset``'s rows as ``feature``'s metadata from Ray workers, each block exactly once.

    A task that raises is retried up to ``max_retries`` times (and a task whose worker died, by
    Ray); a retry never duplicates rows. When a task still fails, the blocks of the tasks that
    committed stay committed (each block is all-or-nothing) and :class:`DistributedWriteError`
    is raised: re-resolve the increment and write again -- committed samples are no longer new.

    Raises:
        DistributedWriteError: a write task failed after its retries (the cause is chained).
    """
    sink = MetaxyDatasink(store, feature, write_id=write_id, max_pending_commits=max_pending_commits)
    try:
        dataset.write_datasink(
            sink,
            ray_remote_args={"max_retries": max_retries, "retry_exceptions": True},
            concurrency=concurrency,
        )
    except Exception as exc:
        raise DistributedWriteError(
            f"Writing '{sink._ctx.key.to_string()}' to {store.display()} from Ray failed (write {sink.write_id}): "
            f"{type(exc).__name__}. Blocks committed before the failure stay, each whole; the failed blocks "
            "wrote nothing. Hint: fix the cause, re-resolve the increment and write again (committed "
            "samples are no longer new)."
        ) from exc
    assert sink.report is not None
    return sink.report
