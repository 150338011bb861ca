"""Output that people read: snapshot tests of rendered graphs and tables, 80-column fit, progress only on a terminal.

Snapshots live in ``tests/cli/snapshots/``; after an intended change, regenerate them with
``MX_UPDATE_SNAPSHOTS=1 pytest tests/cli/test_output.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path

import pytest
from mxcli import MX, clean_env, run_mx

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("MX_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing snapshot {path}; run with MX_UPDATE_SNAPSHOTS=1 to create it"
    assert text == path.read_text()


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("graph_terminal.txt", ["graph", "render"]),
        ("graph_mermaid.mmd", ["graph", "render", "--format", "mermaid", "--direction", "LR"]),
        ("graph_graphviz.dot", ["graph", "render", "-f", "graphviz", "--show-code-versions"]),
        (
            "graph_focus_minimal.txt",
            ["graph", "render", "--feature", "cli/transcript", "--up", "1", "--down", "0", "--minimal"],
        ),
        ("list_features.txt", ["list", "features"]),
    ],
)
def test_rendered_snapshots(project: Path, name: str, args: list[str]) -> None:
    done = run_mx(project, *args, env=clean_env(project, COLUMNS="80"))
    assert done.returncode == 0, done.stderr
    _check_snapshot(name, done.stdout)


def test_graph_render_to_a_file(project: Path) -> None:
    done = run_mx(project, "graph", "render", "-f", "mermaid", "-o", "graph.mmd")
    assert done.returncode == 0 and done.stdout == "" and "Wrote graph.mmd" in done.stderr
    assert (project / "graph.mmd").read_text().startswith("flowchart TB\n")


def test_graph_diff_against_the_pushed_snapshot(stored: Path) -> None:
    pushed = run_mx(stored, "push").stdout.strip()
    same = run_mx(stored, "graph-diff", "render")
    assert same.returncode == 0 and "no changes" in same.stdout
    features = stored / "cli_features" / "__init__.py"
    text = features.read_text().replace(
        'fields=["text"]', 'fields=[mx.FieldSpec(key="text", code_version="2"), "tags"]'
    )
    features.write_text(
        text.replace('key="cli/raw", id_columns=["sid"]', 'key="cli/raw", id_columns=["sid"], description=None')
    )
    done = run_mx(stored, "graph-diff", "render", "latest", "current", "-f", "json")
    assert done.returncode == 0, done.stderr
    import json

    diff = json.loads(done.stdout)
    assert (diff["from"], diff["to"], diff["added"], diff["removed"]) == (pushed, "current", [], [])
    (summary,) = diff["changed"]
    assert summary["feature"] == "cli/summary"
    fields = {f["field"]: f for f in summary["fields"]}
    assert fields["tags"]["status"] == "added"
    assert (fields["text"]["old_code_version"], fields["text"]["new_code_version"]) == ("__metaxy_initial__", "2")
    terminal = run_mx(stored, "graph-diff", "render", pushed, "current")
    assert (
        "~ cli/summary" in terminal.stdout
        and "+ tags" in terminal.stdout
        and "(code __metaxy_initial__ → 2)" in terminal.stdout
    )
    mermaid = run_mx(stored, "graph-diff", "render", "-f", "mermaid")
    assert "class cli_summary changed" in mermaid.stdout


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def test_tables_fit_80_columns(stored: Path) -> None:
    env = clean_env(stored, COLUMNS="80")
    for args in (
        ["list", "features", "-v"],
        ["list", "stores"],
        ["describe", "features", "--all-features"],
        ["describe", "graph"],
        ["metadata", "status", "--all-features", "-v"],
        ["plan"],
        ["trace", "sid=a"],
        ["history"],
    ):
        done = run_mx(stored, *args, env=env)
        assert done.returncode in (0, 1), done.stderr
        assert done.stdout.strip(), args
        assert _widest(done.stdout) <= 80, (args, done.stdout)


def _run_on_a_terminal(project: Path, *args: str) -> str:
    """Run mx with stdout and stderr on a pseudo-terminal; return everything it wrote there."""
    assert MX is not None
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [MX, *args], cwd=project, env=clean_env(project), stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=180)
    os.close(primary)
    assert proc.returncode == 0
    return b"".join(chunks).decode(errors="replace")


HIDE_CURSOR = "\x1b[?25l"  # rich hides the cursor while a live progress bar is drawn


def test_progress_bar_only_on_a_terminal(stored: Path) -> None:
    on_tty = _run_on_a_terminal(stored, "metadata", "status", "--all-features")
    assert HIDE_CURSOR in on_tty
    quiet = _run_on_a_terminal(stored, "metadata", "status", "--all-features", "--no-progress")
    assert HIDE_CURSOR not in quiet
    piped = run_mx(stored, "metadata", "status", "--all-features")
    assert piped.returncode == 0 and piped.stderr == "" and "\x1b" not in piped.stdout
    assert re.search(r"cli/transcript\s+│", piped.stdout)


def _current_version(project: Path, key: str) -> str:
    done = run_mx(project, "list", "features", "-f", "json")
    return next(f["version"] for f in json.loads(done.stdout)["features"] if f["key"] == key)


@pytest.mark.parametrize("operation", ["delete", "copy", "rebase"])
def test_long_operations_draw_progress_only_on_a_terminal(stored: Path, operation: str) -> None:
    args = {
        "delete": ["metadata", "delete", "cli/summary", "--filter", "sid = 'a'", "--dry-run"],
        "copy": ["metadata", "copy", "cli/raw", "cli/transcript", "--from", "dev", "--to", "backup"],
        "rebase": ["metadata", "rebase", "cli/summary", "--from", _current_version(stored, "cli/summary"), "--dry-run"],
    }[operation]
    assert HIDE_CURSOR in _run_on_a_terminal(stored, *args)
    piped = run_mx(stored, *args)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout + piped.stderr
