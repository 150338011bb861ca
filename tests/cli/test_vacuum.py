"""``mx metadata vacuum``: removes a Delta store's unreferenced files; refuses stores without maintenance."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from mxcli import Runner, assert_one_error_line, run_mx, write_rows


def _delta_project(project: Path) -> Path:
    (project / "metaxy.toml").write_text(
        textwrap.dedent(
            f"""
            project = "cli_features"
            entrypoints = ["cli_features"]
            [stores.dev]
            type = "metaxy.ext.polars.handlers.delta.DeltaMetadataStore"
            [stores.dev.config]
            root_path = "{project / "lake"}"
            """
        )
    )
    return project


def test_vacuum_removes_an_orphan_data_file_and_keeps_the_rows(project: Path) -> None:
    _delta_project(project)
    write_rows(project, {"raw": {"a": "1", "b": "1"}}, {"resolve": "cli/transcript"})
    table = project / "lake" / "cli" / "raw.delta"
    committed = sorted(table.glob("*.parquet"))
    assert committed
    # What a killed writer leaves: a data file no Delta commit references.
    orphan = table / "part-00000-orphan.parquet"
    pq.write_table(pa.table({"sid": ["zzz"]}), orphan)

    listed = run_mx(project, "metadata", "vacuum", "cli/raw", "--retention-hours", "0", "--dry-run", "-f", "json")
    data = json.loads(listed.stdout)
    assert data["dry_run"] is True and data["files"] == 1
    assert data["features"][0]["files"][0].endswith("part-00000-orphan.parquet")
    assert orphan.exists()

    done = run_mx(project, "metadata", "vacuum", "--all-features", "--retention-hours", "0")
    assert done.returncode == 0, done.stderr
    assert "Deleted 1 unreferenced file(s)" in " ".join(done.stdout.split())  # the title wraps to the table
    assert not orphan.exists() and sorted(table.glob("*.parquet")) == committed
    assert DeltaTable(str(table)).to_pyarrow_table().num_rows == 2


def test_vacuum_refuses_a_store_without_maintenance_in_one_line(mx: Runner) -> None:
    line = assert_one_error_line(mx("metadata", "vacuum", "--all-features"))
    assert "has no maintenance operation (vacuum)" in line and "DuckDB" in line


def test_vacuum_rejects_a_negative_retention(project: Path) -> None:
    _delta_project(project)
    line = assert_one_error_line(run_mx(project, "metadata", "vacuum", "--all-features", "--retention-hours", "-1"))
    assert "--retention-hours -1 is negative" in line
