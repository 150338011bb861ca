"""The ``mx`` command in a subprocess, on a project directory with a metaxy.toml and a DuckDB store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

MX = shutil.which("mx", path=str(Path(os.sys.executable).parent))

FEATURES = textwrap.dedent(
    """
    import metaxy as mx

    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="cli/raw", id_columns=["sid"], fields=["audio", "frames"])):
        sid: str

    class Transcript(mx.BaseFeature, spec=mx.FeatureSpec(
            key="cli/transcript", id_columns=["sid"], deps=[Raw], fields=["audio"])):
        sid: str
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cli_features").mkdir()
    (tmp_path / "cli_features" / "__init__.py").write_text(FEATURES)
    (tmp_path / "metaxy.toml").write_text(
        textwrap.dedent(
            f"""
            project = "cli_features"
            entrypoints = ["cli_features"]
            auto_create_tables = true
            [stores.dev]
            type = "metaxy.ext.duckdb.DuckDBMetadataStore"
            [stores.dev.config]
            database = "{tmp_path / "m.duckdb"}"
            """
        )
    )
    return tmp_path


def mx(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert MX is not None, "the mx entry point is installed with the package"
    env = {**os.environ, "PYTHONPATH": str(project), "COLUMNS": "200"}
    env = {k: v for k, v in env.items() if not k.startswith("METAXY_")}
    return subprocess.run([MX, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)


def test_list_features_and_stores(project: Path) -> None:
    out = mx(project, "list", "features", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["feature"] for r in rows] == ["cli/raw", "cli/transcript"]
    assert rows[1]["deps"] == "cli/raw"
    stores = json.loads(mx(project, "list", "stores", "--format", "json").stdout)
    assert stores == [{"store": "dev", "type": "metaxy.ext.duckdb.DuckDBMetadataStore", "default": "*"}]


def test_status_push_and_history(project: Path) -> None:
    status = json.loads(mx(project, "metadata", "status", "--all-features", "--format", "json").stdout)
    assert [r["status"] for r in status] == ["root feature", "upstream missing"]
    _write_raw(project, ["a", "b", "c"])
    out = mx(project, "metadata", "status", "cli/transcript", "--format", "json", "--assert-in-sync")
    assert out.returncode == 1
    (row,) = json.loads(out.stdout)
    assert (row["new"], row["stale"], row["orphaned"], row["status"]) == (3, 0, 0, "needs update")
    first = mx(project, "push")
    assert first.returncode == 0 and "Recorded" in first.stderr
    again = mx(project, "push")
    assert again.stdout == first.stdout and "already recorded" in again.stderr
    hist = json.loads(mx(project, "history", "--format", "json").stdout)
    assert [h["metaxy_project_version"] for h in hist] == [first.stdout.strip()]


def test_errors_are_one_line_and_exit_1(project: Path) -> None:
    out = mx(project, "metadata", "status", "nope/x")
    assert out.returncode == 1
    assert "Error: Feature 'nope/x' is not in the feature graph" in out.stderr and "Traceback" not in out.stderr
    both = mx(project, "metadata", "status")
    assert both.returncode == 1 and "exactly one" in both.stderr


def _write_raw(project: Path, ids: list[str]) -> None:
    script = textwrap.dedent(
        f"""
        import warnings, polars as pl, metaxy as mx
        warnings.simplefilter("ignore")
        cfg = mx.init()
        from cli_features import Raw
        store = cfg.get_store()
        with store.open("w"):
            store.write(Raw, pl.DataFrame({{"sid": {ids!r}, "metaxy_provenance_by_field": [
                {{"audio": "a" + i, "frames": "f" + i}} for i in {ids!r}]}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(project)}
    done = subprocess.run([os.sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
