"""Helpers of the CLI tests: the real ``mx`` in a subprocess, on a project with a metaxy.toml and a DuckDB store.

The project: ``cli/raw`` (root, fields audio + frames) → ``cli/transcript`` (audio) → ``cli/summary``
(text), and ``cli/chunks``, a 1:N expansion of ``cli/raw`` (ids ``sid`` + ``chunk``). Rows are
written by a helper script run with the project's own configuration, like a pipeline would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MX = shutil.which("mx", path=str(Path(sys.executable).parent))

FEATURES = textwrap.dedent(
    """
    import metaxy as mx

    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="cli/raw", id_columns=["sid"], fields=["audio", "frames"])):
        \"\"\"Raw recordings.\"\"\"
        sid: str

    class Transcript(mx.BaseFeature, spec=mx.FeatureSpec(
            key="cli/transcript", id_columns=["sid"], deps=[Raw], fields=["audio"])):
        sid: str

    class Summary(mx.BaseFeature, spec=mx.FeatureSpec(
            key="cli/summary", id_columns=["sid"], deps=[Transcript], fields=["text"])):
        sid: str

    class Chunks(mx.BaseFeature, spec=mx.FeatureSpec(
            key="cli/chunks", id_columns=["sid", "chunk"],
            deps=[mx.FeatureDep(feature=Raw, lineage=mx.LineageRelationship.expansion(on=["sid"]))],
            fields=["audio"])):
        sid: str
        chunk: int
    """
)

# Writes rows with the project's config: {"raw": {"sid": tag}} writes root rows whose provenance
# embeds the tag; {"resolve": key} writes a feature's new + stale rows as resolved (a pipeline run);
# {"chunks": n} writes n children per new/stale parent of cli/chunks.
WRITER = textwrap.dedent(
    """
    import json, sys, warnings
    import polars as pl
    import metaxy as mx
    warnings.simplefilter("ignore")
    cfg = mx.init()
    store = cfg.get_store()
    with store.open("w"):
        for op in json.loads(sys.argv[1]):
            run = op.get("run")
            if "raw" in op:
                ids = list(op["raw"])
                store.write("cli/raw", pl.DataFrame({"sid": ids, "metaxy_provenance_by_field": [
                    {"audio": "a-" + op["raw"][i], "frames": "f-" + i} for i in ids]}), materialization_id=run)
            elif "resolve" in op:
                inc = store.resolve_update(op["resolve"])
                df = pl.concat([inc.new.to_polars(), inc.stale.to_polars()], how="diagonal_relaxed")
                if op["resolve"] == "cli/chunks":
                    df = df.join(pl.DataFrame({"chunk": list(range(op.get("n", 2)))}), how="cross")
                if df.height:
                    store.write(op["resolve"], df, materialization_id=run)
            elif "delete" in op:
                store.delete(op["delete"], op.get("filter"))
            elif "fail" in op:
                errors = op["errors"]
                store.record_failures(op["fail"], pl.DataFrame({"sid": list(errors), "error": list(errors.values()),
                    "error_type": [op.get("type")] * len(errors)}), materialization_id=run)
    """
)

Runner = Callable[..., subprocess.CompletedProcess[str]]


def make_project(root: Path) -> Path:
    (root / "cli_features").mkdir(parents=True, exist_ok=True)
    (root / "cli_features" / "__init__.py").write_text(FEATURES)
    (root / "write_rows.py").write_text(WRITER)
    (root / "metaxy.toml").write_text(
        textwrap.dedent(
            f"""
            project = "cli_features"
            entrypoints = ["cli_features"]
            auto_create_tables = true
            [stores.dev]
            type = "metaxy.ext.duckdb.DuckDBMetadataStore"
            [stores.dev.config]
            database = "{root / "m.duckdb"}"
            [stores.backup]
            type = "metaxy.ext.duckdb.DuckDBMetadataStore"
            [stores.backup.config]
            database = "{root / "backup.duckdb"}"
            """
        )
    )
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


def clean_env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAXY_")}
    env.update({"PYTHONPATH": str(project), "COLUMNS": "200"})
    env.update(extra)
    env.pop("FORCE_COLOR", None)
    return env


def run_mx(
    project: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert MX is not None, "the mx entry point is installed with the package"
    return subprocess.run(
        [MX, *args],
        cwd=project,
        env=env or clean_env(project),
        capture_output=True,
        text=True,
        timeout=180,
        input=stdin if stdin is not None else "",
    )


@pytest.fixture
def mx(project: Path) -> Runner:
    def run(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return run_mx(project, *args, **kw)

    return run


def write_rows(project: Path, *ops: dict[str, Any]) -> None:
    done = subprocess.run(
        [sys.executable, str(project / "write_rows.py"), json.dumps(list(ops))],
        cwd=project,
        env=clean_env(project),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def stored(project: Path) -> Path:
    """A pipeline that ran once (a, b, c everywhere; 2 chunks each), then ``a``'s audio was re-recorded."""
    write_rows(
        project,
        {"raw": {"a": "1", "b": "1", "c": "1"}, "run": "run-1"},
        {"resolve": "cli/transcript", "run": "run-1"},
        {"resolve": "cli/summary", "run": "run-1"},
        {"resolve": "cli/chunks", "run": "run-1"},
        {"raw": {"a": "2"}, "run": "run-2"},
    )
    return project


def assert_one_error_line(done: subprocess.CompletedProcess[str], *, code: int | None = 1) -> str:
    """The run failed (with ``code``, when given) and printed exactly one ``Error:`` line and no traceback."""
    if code is None:
        assert done.returncode != 0, (done.stdout, done.stderr)
    else:
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in done.stderr + done.stdout
    return lines[0]
