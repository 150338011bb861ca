"""``mx errors list / reset`` and ``mx trace`` over a real DuckDB store, in subprocesses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from mxcli import Runner, run_mx, write_rows

RUN = (
    {"raw": {"a": "1", "b": "1", "c": "1"}, "run": "run-1"},
    {"resolve": "cli/transcript", "run": "run-1"},
    {"raw": {"a": "2", "b": "2"}, "run": "run-2"},
)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_list_shows_recorded_failures_and_reset_retries_them(project: Path, mx: Runner) -> None:
    write_rows(project, *RUN)
    assert _json(mx("errors", "list", "-f", "json")) == {"count": 0, "failures": []}
    write_rows(
        project, {"fail": "cli/transcript", "errors": {"a": "OOM", "b": "timeout"}, "type": "Crash", "run": "r3"}
    )
    listed = _json(mx("errors", "list", "--all-features", "-f", "json"))
    assert listed["count"] == 2
    assert {(f["sample"]["sid"], f["error"], f["materialization_id"]) for f in listed["failures"]} == {
        ("a", "OOM", "r3"),
        ("b", "timeout", "r3"),
    }
    status = _json(mx("metadata", "status", "cli/transcript", "-f", "json"))
    assert status["features"][0]["stale"] == 0  # both stale samples are quarantined
    trace = _json(mx("trace", "sid=a", "-f", "json"))
    (entry,) = [e for e in trace["samples"][0]["features"] if e["feature"] == "cli/transcript"]
    assert entry["status"] == "failed" and entry["failures"][0]["error"] == "OOM"

    reset = _json(mx("errors", "reset", "cli/transcript", "--filter", "sid = 'a'", "--yes", "-f", "json"))
    assert reset == {"features": [{"feature_key": "cli/transcript", "cleared": 1}], "cleared": 1}
    status = _json(mx("metadata", "status", "cli/transcript", "-f", "json"))
    assert status["features"][0]["stale"] == 1  # a is retried, b still quarantined
    assert [f["sample"]["sid"] for f in _json(mx("errors", "list", "-f", "json"))["failures"]] == ["b"]


def test_reset_needs_a_selection_and_confirmation(project: Path, mx: Runner) -> None:
    write_rows(project, *RUN, {"fail": "cli/transcript", "errors": {"a": "OOM"}, "run": "r3"})
    none = mx("errors", "reset")
    assert none.returncode == 1 and "No features selected" in none.stderr and len(none.stderr.splitlines()) == 1
    unconfirmed = mx("errors", "reset", "cli/transcript")  # stdin is not a terminal
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    bad = mx("errors", "reset", "cli/transcript", "--filter", "nope = 1", "--yes")
    assert bad.returncode == 1 and "nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert _json(run_mx(project, "errors", "list", "-f", "json"))["count"] == 1  # nothing was cleared
