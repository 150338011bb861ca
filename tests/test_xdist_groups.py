"""scripts/test.sh runs ``--dist loadgroup`` so that each ``xdist_group`` runs on one worker: one
local Ray cluster per session instead of one per worker, and a module's module-scoped set-up (the
demo runs, a PostgreSQL cluster) once instead of once per worker. pytest-xdist ignores the groups
without a word when they do not reach its scheduler (pytest 9.2, pytest-dev/pytest-xdist#1386):
this runs a small suite the way scripts/test.sh does and checks where each test ran."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("xdist_groups")

_GROUPED = textwrap.dedent(
    """
    import os
    import pytest

    pytestmark = pytest.mark.xdist_group("{group}")

    @pytest.mark.parametrize("i", range(8))
    def test_where(i):
        with open(os.environ["WHERE_LOG"], "a") as log:
            log.write("{group} " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    """
)


def test_each_xdist_group_runs_on_one_worker(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for group in ("alpha", "beta"):
        (suite / f"test_{group}.py").write_text(_GROUPED.format(group=group))
    log = tmp_path / "where.log"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=suite,
        env={**os.environ, "WHERE_LOG": str(log)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = log.read_text().splitlines()
    workers: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        group, worker = line.split()
        workers[group].add(worker)
    assert len(lines) == 16
    assert {group: len(ws) for group, ws in workers.items()} == {"alpha": 1, "beta": 1}, dict(workers)
