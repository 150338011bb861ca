"""docs/cli.md is executed: its project files are written, every ``$ mx ...`` example runs in order, and the
output shown in the doc is what the command prints (timestamps normalised).

After an intended change of output, ``MX_UPDATE_SNAPSHOTS=1 pytest tests/cli/test_docs_cli.py`` rewrites the
outputs in docs/cli.md; review the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mxcli import WRITER, clean_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
FILE_BLOCK = re.compile(r"^```(?:toml|python) title=\"([^\"]+)\"\n(.*?)^```\n", re.S | re.M)
CONSOLE = re.compile(r"^```console\n(.*?)^```\n", re.S | re.M)
# `<!-- rows: [...] -->`: operations of write_rows.py run at that point of the page (e.g. record failures)
ROWS = re.compile(r"^<!-- rows: (.*?) -->$", re.M)
STEP = re.compile(f"{ROWS.pattern}|{CONSOLE.pattern}", re.S | re.M)
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?\+00:00")
SHORT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")

# the state the examples start from: a pipeline ran once (a, b, c), then a's audio was re-recorded
SETUP = (
    '[{"raw": {"a": "1", "b": "1", "c": "1"}, "run": "run-1"}, {"resolve": "cli/transcript", "run": "run-1"}, '
    '{"resolve": "cli/summary", "run": "run-1"}, {"resolve": "cli/chunks", "run": "run-1"}, '
    '{"raw": {"a": "2"}, "run": "run-2"}]'
)


def _normalise(text: str) -> str:
    text = ISO.sub("2026-01-01T00:00:00+00:00", text)
    return SHORT.sub("2026-01-01 00:00:00", text)


def _run(project: Path, command: str) -> str:
    env = clean_env(project, COLUMNS="80", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # stderr joins stdout in the order written, as on a terminal
    done = subprocess.run(
        ["bash", "-c", f"exec 2>&1\n{command}"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    return _normalise(done.stdout)


def test_every_example_in_docs_cli_md_runs_as_shown(tmp_path: Path) -> None:
    doc = DOC.read_text()
    files = FILE_BLOCK.findall(doc)
    assert {name for name, _ in files} == {"metaxy.toml", "cli_features/__init__.py"}
    for name, body in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    (tmp_path / "write_rows.py").write_text(WRITER)
    done = subprocess.run(
        [sys.executable, "write_rows.py", SETUP], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

    assert len(CONSOLE.findall(doc)) >= 15
    rewritten = []
    mismatches = []
    for ops, block in STEP.findall(doc):
        if ops:
            step = subprocess.run(
                [sys.executable, "write_rows.py", ops], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True
            )
            assert step.returncode == 0, step.stderr
            continue
        command_line, _, shown = block.partition("\n")
        assert command_line.startswith("$ mx "), command_line
        actual = _run(tmp_path, command_line[2:])
        rewritten.append(f"{command_line}\n{actual}")
        if actual != shown:
            mismatches.append(f"{command_line}\n--- doc\n{shown}--- actual\n{actual}")
    if os.environ.get("MX_UPDATE_SNAPSHOTS"):
        parts = iter(rewritten)
        DOC.write_text(CONSOLE.sub(lambda m: f"```console\n{next(parts)}```\n", doc))
        return
    assert mismatches == []
