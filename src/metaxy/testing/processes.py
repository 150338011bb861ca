"""Run one function in several spawned processes at once: the multi-process writer tests.

Each process gets its own arguments plus a start barrier as the last argument; the function calls
``start.wait()`` once it is ready, so the processes begin their work together.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["run_together"]


def run_together(target: Callable[..., None], args: Sequence[tuple[Any, ...]], *, timeout: float = 300.0) -> None:
    """Run ``target(*a, start)`` for each ``a`` in ``args``, each in a spawned process.

    Raises:
        AssertionError: a process failed, or was still running after ``timeout`` seconds (then killed).
    """
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(len(args))
    procs = [ctx.Process(target=target, args=(*a, start)) for a in args]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout  # one deadline for all: not up to timeout per process
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    if codes != [0] * len(procs):
        raise AssertionError(f"processes exited with {codes} (None: still running after {timeout:g}s, killed)")
