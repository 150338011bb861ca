"""Real faults for testing distributed writes: a datasink whose chosen write tasks raise or kill
their worker process (``SIGKILL``) before or after committing, on the first attempt only or always.

It lives in the package (not in a test module) so that Ray workers can import it by name. The
first attempt of a task is recognised by a marker file in ``marker_dir`` (shared by the local
cluster's processes).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from metaxy.ext.ray import MetaxyDatasink
from metaxy.ext.ray._commit import BlockReport

__all__ = ["Fault", "FaultyDatasink", "InjectedFault"]

Fault = Literal["raise_before", "raise_after", "kill_before", "kill_after", "raise_always"]


class InjectedFault(RuntimeError):
    """The error a faulty write task raises."""


class FaultyDatasink(MetaxyDatasink):
    """A :class:`MetaxyDatasink` whose write task ``i`` suffers ``faults[i]``."""

    def __init__(self, *args: Any, faults: Mapping[int, Fault], marker_dir: str | os.PathLike[str], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.faults = dict(faults)
        self.marker_dir = str(marker_dir)

    def _first_attempt(self, task_idx: int) -> bool:
        marker = Path(self.marker_dir) / f"{self.write_id}-{task_idx}"
        if marker.exists():
            return False
        marker.touch()
        return True

    @staticmethod
    def _strike(fault: str) -> None:
        if fault.startswith("kill"):
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFault(f"injected fault: {fault}")

    def write(self, blocks: Iterable[Any], ctx: Any) -> BlockReport:
        fault = self.faults.get(ctx.task_idx)
        if fault == "raise_always":
            raise InjectedFault("injected fault: raise_always")
        strike = fault is not None and self._first_attempt(ctx.task_idx)
        if strike and fault is not None and fault.endswith("_before"):
            self._strike(fault)
        report = super().write(blocks, ctx)
        if strike and fault is not None and fault.endswith("_after"):
            self._strike(fault)
        return report
