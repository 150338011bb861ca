"""The benchmark harness runs end to end on a small N: both sides in child processes, counts checked,
report written. The timed figures themselves are not asserted (performance lives in the report)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


@pytest.mark.parametrize("cold", [False, True], ids=["warm-open", "cold-open"])
def test_a_small_run_writes_a_report(tmp_path: Path, cold: bool) -> None:
    out = tmp_path / "RESULTS.md"
    cmd = [sys.executable, str(RUN), "--n", "2000", "--rounds", "1", "--scenario", "simple", "--output", str(out)]
    result = subprocess.run(
        [*cmd, "--cold-open"] if cold else cmd,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert "timed open: **cold**" in text if cold else "timed open: warm" in text
    rows = [line for line in text.splitlines() if line.startswith("| simple | 2k |")]
    assert [row.split("|")[3].strip() for row in rows] == ["new", "stale"]
    assert "## Errors" not in text
    assert "2 cells" in result.stdout and "0 errors" in result.stdout


def test_the_large_filter_benchmark_runs_and_reports_growth(tmp_path: Path) -> None:
    out = tmp_path / "filters.md"
    script = RUN.parent / "filters.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--rows", "3000", "--terms", "100,400", "--rounds", "1", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for store in ("memory", "duckdb", "delta"):
        assert f"| {store} | or | 400 |" in text and f"| {store} | in | 100 |" in text
    assert "Growth exponent" in text


def test_the_lakehouse_benchmark_runs_each_family_local_and_on_s3(tmp_path: Path) -> None:
    """``lakehouse.py`` starts moto for the ``*_s3`` stores and writes one report per store."""
    stores = ("delta_s3", "iceberg", "lancedb_s3")
    cmd = [
        sys.executable,
        str(RUN.parent / "lakehouse.py"),
        "--stores",
        ",".join(stores),
        "--output-dir",
        str(tmp_path),
    ]
    flags = ["--n", "2000", "--rounds", "1", "--scenario", "simple", "--phase", "stale"]
    proc = subprocess.run([*cmd, *flags], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for store in stores:
        text = (tmp_path / f"RESULTS_{store}.md").read_text()
        assert f"store `{store}`" in text
        assert any(line.startswith("| simple | 2k | stale |") for line in text.splitlines())
        assert "## Errors" not in text
