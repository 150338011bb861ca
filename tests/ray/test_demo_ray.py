"""``mx demo --ray``: the per-clip computations run as Ray tasks on the session's local cluster and
their rows come back through the datasink (the committer actor: the demo's store is DuckDB); every
round is "as planned" and the Metaxy asset checks pass, as without Ray.

The demo runs in this process (``run_demo(ray=True)`` uses the already-started cluster) so that the
tests pay for one Ray start-up; the CLI's ``--ray`` flag is checked in a subprocess up to its
argument validation (a full CLI run would start a second cluster)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from metaxy.models import constants as c

pytestmark = [pytest.mark.xdist_group("ray")]

N = 4  # the smallest library the demo accepts: three rounds of Ray writes
BIN = Path(sys.executable).parent


def test_demo_with_ray_runs_as_planned(ray_cluster: Any, tmp_path: Path) -> None:
    from metaxy._demo.runner import run_demo

    out = io.StringIO()
    report = run_demo(tmp_path / "demo", clips=N, seed=1, console=Console(file=out, width=120), ray=True)
    assert [r.matches for r in report.rounds] == [True, True, True], out.getvalue()[-3000:]
    checks = [ok for r in report.rounds for ok in r.checks.values()]
    assert len(checks) == 3 * 15 and all(checks)
    assert report.ok
    first = report.rounds[0]
    assert first.actual["video/transcript"][0] == N  # every clip new, computed by Ray

    # The per-clip rows were written by the datasink: their materialization ids are block tokens.
    import duckdb

    db = next((tmp_path / "demo").rglob("*.duckdb"))
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [t for (t,) in con.execute("SHOW TABLES").fetchall() if "transcript" in t]
        query = f'SELECT DISTINCT {c.MATERIALIZATION_ID} FROM "{tables[0]}" WHERE {c.DELETED_AT} IS NULL'
        ids = {m for (m,) in con.execute(query).fetchall()}  # soft-delete rows are the asset's own
    finally:
        con.close()
    assert ids and all(m is not None and "/" in m for m in ids)


def test_cli_demo_ray_flag_is_known(tmp_path: Path) -> None:
    """The real CLI documents ``--ray`` and parses it (bad input still fails before Ray starts)."""
    shown = subprocess.run([str(BIN / "mx"), "demo", "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "--ray" in shown.stdout
    done = subprocess.run(
        [str(BIN / "mx"), "demo", "--ray", "--clips", "1"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "clips" in out.lower() and "unknown" not in out.lower()
