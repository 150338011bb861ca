"""Committing one block of rows exactly once, and the committer actor of single-writer stores.

**The block token.** Every write task of a Ray write gets a token ``<write_id>/<task_idx>``; a
retried task is the same task (same inputs, same ``task_idx``), so it carries the same token. The
rows of a block are written in **one** ``store.write`` (the contract's ``_append`` is atomic: all
rows or none), stamped with the token as their ``metaxy_materialization_id``. Before writing, the
committer looks the token up in the table: found means an earlier attempt committed the whole
block (and then died or failed before Ray heard of it), so the retry writes nothing. Hence:

* a failed task's rows are not committed (the append never ran, or it rolled back);
* a retried task does not duplicate rows (the token is found);
* a worker killed after its commit loses nothing (the rows are in the store; the retry finds them).

This relies on two attempts of one task never running at the same time, which Ray guarantees
for task retries (a retry is submitted when the previous attempt has failed or its worker died).

**Single-writer stores** (``capabilities.concurrency == "single_writer"``, e.g. a DuckDB file)
are written by one process only: a named committer actor, created by the driver for the write
and stopped at its end, runs the commits one at a time (``max_concurrency=1``). Its queue is bounded
(``max_pending_calls``): a task whose commit finds the queue full waits and retries, so producers
slow down to the committer's pace instead of piling blocks up in memory -- and no worker ever
opens the file, so there is no lock conflict to crash on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from metaxy.models import constants as c

from ._shipping import WorkerContext

__all__ = ["BlockReport", "Committer", "commit_block", "submit_to_committer"]


@dataclass(frozen=True)
class BlockReport:
    """What one write task did: its token, its rows, and whether it wrote them (False: an earlier
    attempt of the same task had committed them)."""

    token: str
    rows: int
    written: bool


def committed_rows(ctx: WorkerContext, token: str) -> int:
    """Rows already stored under ``token`` (the store open in this thread)."""
    store = ctx.store
    if not store.has_feature(ctx.key):
        return 0
    quoted = token.replace("'", "''")
    frame = store.read(
        ctx.key,
        filters=[f"{c.MATERIALIZATION_ID} = '{quoted}'"],
        columns=[c.MATERIALIZATION_ID],
        with_feature_history=True,
        with_sample_history=True,
        include_soft_deleted=True,
        allow_fallback=False,
    )
    return int(frame.select(c.MATERIALIZATION_ID).collect().shape[0])


def commit_block(ctx: WorkerContext, token: str, table: pa.Table) -> BlockReport:
    """Write ``table`` as ``ctx.key``'s metadata once under ``token`` (opens the store for writing)."""
    with ctx.activate(), ctx.store.open("w"):
        done = committed_rows(ctx, token)
        if done:
            return BlockReport(token=token, rows=done, written=False)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        rows = ctx.store.write(ctx.key, frame, materialization_id=token)
        return BlockReport(token=token, rows=rows, written=True)


class Committer:
    """The one writer of a single-writer store during a Ray write (used as a Ray actor). It opens
    the store for each commit, so the file is not held between commits."""

    def __init__(self) -> None:
        self._done: dict[str, int] = {}

    def commit(self, ctx: WorkerContext, token: str, table: pa.Table) -> BlockReport:
        if token in self._done:
            return BlockReport(token=token, rows=self._done[token], written=False)
        report = commit_block(ctx, token, table)
        self._done[token] = report.rows
        return report

    def ping(self) -> bool:
        return True


def submit_to_committer(
    handle: Any, ctx: WorkerContext, token: str, table: pa.Table, *, wait_seconds: float = 0.05
) -> BlockReport:
    """Send a block to the committer, waiting while its queue is full (backpressure); returns
    once the block is committed (acknowledged)."""
    from ray.exceptions import PendingCallsLimitExceeded

    import ray

    delay = wait_seconds
    while True:
        try:
            ref = handle.commit.remote(ctx, token, table)
            break
        except PendingCallsLimitExceeded:
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    report: BlockReport = ray.get(ref)
    return report
