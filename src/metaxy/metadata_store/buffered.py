"""``BufferedMetadataWriter``: batch many small writes into few, from a background thread."""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections import defaultdict
from typing import Any

import polars as pl

from metaxy.models.keys import FeatureKey, coerce_to_feature_key

from ._frames import to_polars_lazy
from .base import MetadataStore

__all__ = ["BufferedMetadataWriter"]

_STOP = object()
_FLUSH = object()


class BufferedMetadataWriter:
    """Collects ``put({feature: frame})`` calls and writes them in batches with ``write_multi``.

    The active graph and config at construction are used by the writer thread. Flushes happen on
    ``flush()``, ``stop()``, when ``flush_batch_size`` rows are buffered, or every ``flush_interval``
    seconds. A failed background flush stops the writer; the error is re-raised by the next
    ``put`` / ``flush`` / ``stop``.
    """

    def __init__(
        self,
        store: MetadataStore,
        flush_batch_size: int | None = None,
        flush_interval: float = 2.0,
        max_queue_size: int = 0,
    ) -> None:
        self.store = store
        self.flush_batch_size = flush_batch_size
        self.flush_interval = flush_interval
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue_size)
        self._context = contextvars.copy_context()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._error: BaseException | None = None
        self._written: dict[FeatureKey, int] = defaultdict(int)
        self._flushed = threading.Event()

    # --- public API ------------------------------------------------------------------------------
    def start(self) -> BufferedMetadataWriter:
        if self._thread is not None:
            raise RuntimeError("BufferedMetadataWriter was already started. Hint: create a new writer.")
        self._thread = threading.Thread(
            target=self._context.run, args=(self._run,), daemon=True, name="metaxy-buffered-writer"
        )
        self._thread.start()
        return self

    def put(self, frames: dict[Any, Any]) -> None:
        self._check_usable()
        self._queue.put({coerce_to_feature_key(k): v for k, v in frames.items()})

    def flush(self, timeout: float = 30) -> None:
        self._check_usable()
        self._flushed.clear()
        self._queue.put(_FLUSH)
        if not self._flushed.wait(timeout):
            raise TimeoutError(f"BufferedMetadataWriter did not flush within {timeout}s.")
        self._raise_error()

    def stop(self, timeout: float = 30) -> dict[FeatureKey, int]:
        if self._thread is None:
            raise RuntimeError("BufferedMetadataWriter was never started. Hint: call start() first.")
        if not self._stopped:
            self._stopped = True
            self._queue.put(_STOP)
            self._thread.join(timeout)
        self._raise_error()
        return dict(self._written)

    @property
    def num_written(self) -> int:
        return sum(self._written.values())

    @property
    def rows_written(self) -> dict[FeatureKey, int]:
        return dict(self._written)

    @property
    def has_error(self) -> bool:
        return self._error is not None

    def __enter__(self) -> BufferedMetadataWriter:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- internals -------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self._thread is None:
            raise RuntimeError(
                "BufferedMetadataWriter is not started. Hint: call start() or use it as a context manager."
            )
        self._raise_error()
        if self._stopped:
            raise RuntimeError("BufferedMetadataWriter is stopped. Hint: create a new writer.")

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"BufferedMetadataWriter failed in the background: {self._error}") from self._error

    def _run(self) -> None:
        pending: dict[FeatureKey, list[pl.DataFrame]] = defaultdict(list)
        rows = 0
        last = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=max(0.01, self.flush_interval - (time.monotonic() - last)))
            except queue.Empty:
                item = _FLUSH
            if isinstance(item, dict):
                for key, frame in item.items():
                    df = to_polars_lazy(frame).collect()
                    pending[key].append(df)
                    rows += df.height
                if not (self.flush_batch_size and rows >= self.flush_batch_size):
                    continue
            try:
                if pending:
                    self._write(pending)
                pending.clear()
                rows = 0
            except BaseException as exc:  # resurfaced on the caller's next call
                self._error = exc
                self._flushed.set()
                return
            last = time.monotonic()
            if item is _FLUSH:
                self._flushed.set()
            if item is _STOP:
                return

    def _write(self, pending: dict[FeatureKey, list[pl.DataFrame]]) -> None:
        frames = {k: pl.concat(v, how="diagonal_relaxed") for k, v in pending.items()}
        with self.store.open("w"):
            written = self.store.write_multi(frames)
        for k, n in written.items():
            self._written[k] += n
