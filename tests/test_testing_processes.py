"""``metaxy.testing.processes.run_together``: the helper the multi-process writer tests rely on."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from metaxy.testing.processes import run_together


def _exit_with(code: int, start: Any) -> None:
    start.wait()
    sys.exit(code)


def test_it_returns_when_every_process_succeeds_and_reports_the_exit_codes_otherwise() -> None:
    run_together(_exit_with, [(0,), (0,)], timeout=60)
    with pytest.raises(AssertionError, match=r"processes exited with \[0, 3\]"):
        run_together(_exit_with, [(0,), (3,)], timeout=60)
